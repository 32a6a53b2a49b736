"""Voxels computed per output voxel: the former fixed streamed block vs the block chosen per volume.

Pure geometry (no restoration): for the pretrained FIB-SEM x4 model's halos (skeleton, SkelEM)
and a few volume shapes, the block ``skelem restore ... -o OUT.ome.zarr`` chooses for 2 workers
(:func:`skelem.inference.writers.stream_block_shape`) against the former fixed 128 x 512 x 512
block: the voxels all blocks compute (read regions, halos included) over the output voxels, the
block count and the largest read region (the block's memory).

Usage::

    .venv/bin/python benchmarks/block_choice.py [--workers 2]
"""

from __future__ import annotations

import argparse

import numpy as np

from skelem.config.restore import RestoreOptions
from skelem.inference.job import RestoreJob
from skelem.inference.planner import block_output_shape, plan_blocks
from skelem.inference.writers import STREAM_BLOCK, output_chunks, stream_block_shape
from skelem.io import Volume
from skelem.models.artifact import load_artifact
from skelem.models.pretrained import pretrained_model_dir

SHAPES = [(63, 250, 250), (63, 1000, 1000), (250, 2000, 2000), (100, 8000, 8000)]


def computed(plan, factor: int) -> tuple[float, int]:
    sizes = [int(np.prod(block_output_shape(b, factor))) for b in plan]
    return float(sum(sizes)), max(sizes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    artifact = load_artifact(pretrained_model_dir(4))
    print(
        "| method | input (x4) | fixed block: computed / output, blocks, largest read (M) "
        "| chosen block | computed / output, blocks, largest read (M) |"
    )
    print("|---|---|---|---|---|")
    for method in ("skeleton", "skelem"):
        for shape in SHAPES:
            volume = Volume(np.broadcast_to(np.uint8(0), shape))  # geometry only, never read
            job = RestoreJob.prepare(volume, artifact, 4, RestoreOptions(method=method))
            halo, align = job.method.halo, job.method.align
            out = np.prod(job.output_shape)
            rows = []
            for block in (STREAM_BLOCK, stream_block_shape(job, args.workers)):
                plan = plan_blocks(shape, 4, block, halo, align=align, chunks=output_chunks(block))
                total, largest = computed(plan, 4)
                rows.append((block, total / out, len(plan), largest / 1e6))
            (_, f_ratio, f_n, f_read), (chosen, c_ratio, c_n, c_read) = rows
            print(
                f"| {method} | {' x '.join(map(str, shape))} | {f_ratio:.2f}, {f_n}, {f_read:.1f} "
                f"| {' x '.join(map(str, chosen))} | {c_ratio:.2f}, {c_n}, {c_read:.1f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
