"""Dask scale-out of streamed (OME-Zarr) restoration: throughput, memory, scheduler overhead.

Measured side by side in one run, on local clusters of single-threaded worker processes:

1. **Throughput, 1 vs 2 workers**: output voxels per second of ``skeleton`` and ``skelem`` (the
   pretrained FIB-SEM x4 model) on the real ``fibsem_medulla_t2`` mirrored along Y to
   250 x 500 x 250 (``--throughput-width``) and simulated at x4 (every 4th slice kept), with the
   block ``skelem restore`` chooses for 2 workers, the same plan on 1 and on 2 workers. The rate
   counts the block tasks only (from submission to the last block written), not the cluster
   start or the model loading, which happen once per worker.
2. **Peak memory per worker as the volume grows 1x, 4x, 16x** (``cubic``, float32 output of
   249 x 432^2, 249 x 864^2, 249 x 1728^2 voxels, the volume tiled from the real one by
   mirroring; 2 workers with ``--memory-limit`` 640 MiB each): the 16x output (2.97 GB) is over 4
   times the memory given to a worker. Peak = the worker's ``VmHWM`` after its last block.
2b. **Throughput on a volume over 4x each worker's memory** (``--parts large``, not in the
   default set: ~45 minutes): t2 mirrored along Y until the float32 output is 4.2x
   ``--large-memory-limit`` (1,280 MiB: 249 x 22,640 x 250), x4, blocks of ``--large-block``; the
   plan's first ``--large-blocks`` blocks (8 skeleton, 4 SkelEM) on 1 and on 2 workers.
3. **Scheduler overhead per block**: many tiny ``cubic`` blocks on 2 workers; overhead =
   (wall time x workers - summed task time) / blocks (submission, scheduling, the client's
   progress-file write per block, results coming back).
4. **Paper estimate** for a 1 TB (10^12 output voxels, uint8) restoration on 16 GPU nodes from the
   measured per-block CPU time of ``skelem`` on one core and the measured overhead; the GPU's
   speed-up over one CPU core is an assumption (``--gpu-speedup``), not measured here.

Every block task also reports its worker's CPU time: on a machine shared with other jobs the wall
time of 2 workers counts the other jobs too, the CPU time per block does not.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run_dask_scaling.py -o bench-out/dask \
        [--memory-limit 512MiB] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import tifffile

from skelem.config.restore import RestoreOptions
from skelem.evaluation.benchmark import machine_description
from skelem.inference.dask_runner import local_client, run_on_dask
from skelem.inference.job import RestoreJob
from skelem.inference.writers import BlockRestorer, output_chunks
from skelem.io import open_volume
from skelem.models.artifact import load_artifact
from skelem.models.pretrained import pretrained_model_dir

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t2" / "raw.tif"
FACTOR = 4
MiB = 2**20


def restore(
    source: Path,
    out: Path,
    method: str,
    workers: int,
    block: tuple[int, int, int],
    memory_limit: str,
    dtype: str = "input",
    max_blocks: int | None = None,
) -> dict:
    """Restore ``source`` into ``out`` on a fresh local cluster; the run's measurements.

    ``max_blocks``: run only the plan's first blocks (a window of a volume too large to restore
    whole here); the rate then counts the voxels of those blocks."""
    volume = open_volume(source)
    network = method not in ("nearest", "linear", "cubic")
    artifact = load_artifact(pretrained_model_dir(FACTOR)) if network else None
    options = RestoreOptions(
        method=method, block_shape=block, dtype=dtype, device="cpu", normalize="input"
    )
    job = RestoreJob.prepare(volume, artifact, FACTOR, options)
    chunks = output_chunks(block)
    plan, out_shape = job.plan(block, chunks=chunks)
    planned = len(plan)
    plan = plan[:max_blocks] if max_blocks else plan
    out_dtype = np.dtype(np.float32) if dtype == "float32" else volume.dtype
    setup = BlockRestorer.of(job, out_dtype, None)
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    with local_client(workers, memory_limit, lifetime=None, dashboard_address=None) as client:
        cluster_seconds = time.perf_counter() - started
        run = run_on_dask(client, setup, plan, out, out_shape, out_dtype, chunks)
    shutil.rmtree(out, ignore_errors=True)
    peak: dict[int, int] = defaultdict(int)
    for report in run.reports:
        peak[report.pid] = max(peak[report.pid], report.peak_rss)
    voxels = sum(int(np.prod([s.stop - s.start for s in b.write])) for b in plan)
    task_seconds = sum(r.seconds for r in run.reports)
    cpu_by_worker: dict[int, float] = defaultdict(float)
    for report in run.reports:
        cpu_by_worker[report.pid] += report.cpu_seconds
    return {
        "method": method,
        "workers": workers,
        "input_shape": list(volume.shape),
        "output_shape": list(out_shape),
        "output_bytes": int(np.prod(out_shape)) * out_dtype.itemsize,
        "block": list(block),
        "blocks": len(plan),
        "blocks_planned": planned,
        "voxels_written": voxels,
        "cluster_start_s": round(cluster_seconds, 2),
        "run_s": round(run.seconds, 3),
        "task_s_sum": round(task_seconds, 3),
        "task_cpu_s_sum": round(sum(cpu_by_worker.values()), 3),
        "task_cpu_s_busiest_worker": round(max(cpu_by_worker.values()), 3),
        "mvoxel_per_s": round(voxels / run.seconds / 1e6, 4),
        "overhead_per_block_s": round((run.seconds * workers - task_seconds) / len(plan), 4),
        "peak_rss_mib_per_worker": sorted(round(v / MiB) for v in peak.values()),
        "memory_limit": memory_limit,
    }


def default_block(source: Path, method: str, workers: int) -> tuple[int, int, int]:
    """The block ``skelem restore SOURCE -o OUT.ome.zarr`` chooses for ``workers`` workers."""
    from skelem.inference.writers import stream_block_shape

    options = RestoreOptions(method=method, device="cpu", normalize="input")
    artifact = load_artifact(pretrained_model_dir(FACTOR))
    job = RestoreJob.prepare(open_volume(source), artifact, FACTOR, options)
    return stream_block_shape(job, workers)


def write_input(path: Path, volume: np.ndarray) -> Path:
    """The x4 acquisition of ``volume`` (every 4th slice), as ``.npy`` (memory-mapped by the
    workers, so reading costs nothing next to restoring)."""
    np.save(path, np.ascontiguousarray(volume[::FACTOR]))
    return path


def tiled(crop: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """``crop`` mirrored and tiled to ``(Z, ny, nx)``."""
    reps_y, reps_x = -(-ny // crop.shape[1]), -(-nx // crop.shape[2])
    rows = [crop if i % 2 == 0 else crop[:, ::-1] for i in range(reps_y)]
    band = np.concatenate(rows, axis=1)
    cols = [band if j % 2 == 0 else band[:, :, ::-1] for j in range(reps_x)]
    return np.ascontiguousarray(np.concatenate(cols, axis=2)[:, :ny, :nx])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", default="bench-out/dask")
    parser.add_argument("--memory-limit", default="640MiB", help="per worker, memory runs")
    parser.add_argument("--gpu-speedup", type=float, default=50.0)
    parser.add_argument("--quick", action="store_true", help="smaller volumes (a smoke run)")
    parser.add_argument(
        "--throughput-width", type=int, default=500, help="Y size of the throughput volume"
    )
    parser.add_argument(
        "--throughput-block",
        type=lambda text: tuple(int(v) for v in text.split(",")),
        help="Z,Y,X block of the throughput runs (default: the one skelem restore chooses, which "
        "for this volume is a single block on one 2-thread worker; 249,256,250 gives 2 blocks)",
    )
    parser.add_argument(
        "--methods", nargs="+", default=["skeleton", "skelem"], help="throughput runs: methods"
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["throughput", "memory", "overhead"],
        choices=["throughput", "memory", "overhead", "large"],
    )
    parser.add_argument(
        "--large-memory-limit", default="1280MiB", help="per worker, the large-volume runs"
    )
    parser.add_argument(
        "--large-blocks",
        type=lambda text: dict(
            (k, int(v)) for k, v in (item.split("=") for item in text.split(","))
        ),
        default={"skeleton": 8, "skelem": 4},
        help="large-volume runs: blocks restored per method (the plan's first ones), e.g. "
        "skeleton=8,skelem=4",
    )
    parser.add_argument(
        "--large-block",
        type=lambda text: tuple(int(v) for v in text.split(",")),
        default=(249, 256, 250),
        help="Z,Y,X block of the large-volume runs: one that fits the memory limit (the block "
        "skelem restore chooses by itself on this volume is sized for the default limit, "
        "the machine's memory shared by the workers)",
    )
    args = parser.parse_args()
    root = Path(args.output)
    root.mkdir(parents=True, exist_ok=True)
    raw = tifffile.imread(DATA)  # (250, 250, 250) uint8
    results: dict = {"machine": machine_description(), "date": time.strftime("%Y-%m-%d %H:%M")}

    # 1. throughput, 1 vs 2 workers: the t2 volume mirrored to 250 x 500 x 250 (x4), restored
    # with the block `skelem restore` chooses for 2 workers; the 1-worker run uses the same plan
    ny, nx = (32, 32) if args.quick else (args.throughput_width, raw.shape[2])
    source = write_input(root / "crop.npy", tiled(raw, ny, nx))
    results["throughput"] = []
    for method in args.methods if "throughput" in args.parts else ():
        block = args.throughput_block or default_block(source, method, workers=2)
        for workers in (1, 2):
            row = restore(source, root / "out.ome.zarr", method, workers, block, "auto")
            print(json.dumps(row), flush=True)
            results["throughput"].append(row)

    # 2. peak memory per worker, volume 1x, 4x, 16x (cubic, float32 output)
    base = 108 if args.quick else 432
    results["memory"] = []
    for scale in (1, 2, 4) if "memory" in args.parts else ():  # 1x, 4x, 16x the voxels
        volume = tiled(raw, base * scale, base * scale)
        source = write_input(root / f"mem{scale}.npy", volume)
        del volume
        row = restore(
            source,
            root / "out.ome.zarr",
            "cubic",
            2,
            (64, 256, 256),
            args.memory_limit,
            "float32",
        )
        row["volume_scale"] = scale * scale
        print(json.dumps(row), flush=True)
        results["memory"].append(row)
        source.unlink()

    # 2b. throughput on a volume over 4x the memory given to each worker (float32 output):
    # t2 mirrored along Y until the output is 4.2x the limit, the plan's first blocks restored
    # on 1 and on 2 workers (the whole plan takes hours here; every block is the same size)
    results["large"] = []
    if "large" in args.parts:
        from dask.utils import parse_bytes

        limit = parse_bytes(args.large_memory_limit)
        out_z = FACTOR * (-(-raw.shape[0] // FACTOR) - 1) + 1
        ny = int(np.ceil(4.2 * limit / (out_z * raw.shape[2] * 4)))
        source = write_input(root / "large.npy", tiled(raw, ny, raw.shape[2]))
        for method, count in args.large_blocks.items():
            block = args.large_block
            for workers in (1, 2):
                row = restore(
                    source,
                    root / "out.ome.zarr",
                    method,
                    workers,
                    block,
                    args.large_memory_limit,
                    "float32",
                    max_blocks=count,
                )
                row["output_over_memory_limit"] = round(row["output_bytes"] / limit, 2)
                print(json.dumps(row), flush=True)
                results["large"].append(row)
        source.unlink()

    # 3. scheduler overhead per block: tiny cubic blocks
    if "overhead" in args.parts:
        source = write_input(root / "tiny.npy", raw[:, :128, :128])
        row = restore(source, root / "out.ome.zarr", "cubic", 2, (16, 32, 32), "auto")
        print(json.dumps(row), flush=True)
        results["overhead"] = row
    (root / "results.json").write_text(json.dumps(results, indent=2))
    if "throughput" not in args.parts or "overhead" not in args.parts:
        return 0

    # 4. paper estimate: 1 TB of uint8 output on 16 GPU nodes
    skelem_one = next(
        r for r in results["throughput"] if r["method"] == "skelem" and r["workers"] == 1
    )
    # CPU time, not wall time: on this shared machine the wall time counts the other jobs too
    core_s_per_voxel = skelem_one["task_cpu_s_sum"] / np.prod(skelem_one["output_shape"])
    voxels = 1e12
    default_block_voxels = 128 * 512 * 512
    blocks = voxels / default_block_voxels
    nodes, gpus = 16, 4
    compute_h = voxels * core_s_per_voxel / (nodes * gpus * args.gpu_speedup) / 3600
    overhead_h = blocks * results["overhead"]["overhead_per_block_s"] / (nodes * gpus) / 3600
    results["estimate_1tb"] = {
        "core_seconds_per_mvoxel": round(core_s_per_voxel * 1e6, 2),
        "cpu_core_hours": round(voxels * core_s_per_voxel / 3600),
        "blocks_at_128x512x512": round(blocks),
        "nodes": nodes,
        "gpus_per_node": gpus,
        "assumed_gpu_speedup_over_one_core": args.gpu_speedup,
        "compute_hours": round(compute_h, 1),
        "scheduler_overhead_hours": round(overhead_h, 3),
    }
    print(json.dumps(results["estimate_1tb"]), flush=True)
    (root / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
