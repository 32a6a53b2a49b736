"""Restoration throughput and peak memory, streamed block by block to OME-Zarr.

Input: the real FIB-SEM ``fibsem_medulla_t2`` (250^3, 10 nm), simulated x4 acquisition (63 slices,
every 4th), written as OME-Zarr. Each input is restored with ``skelem restore -o out.ome.zarr`` \
in a fresh process
measured by ``/usr/bin/time``: output voxels per second and peak resident memory. The memory check
restores an X band (``--memory-x``) of the volume and the same band mirrored and tiled to 2 and 4
times its Y size (``--memory-scales``) with the same block (``--memory-block``), in one process or
on ``--memory-workers`` Dask worker processes (the CLI's ``--workers``): peak memory should not
grow with volume size. (``benchmarks/run_dask_scaling.py`` measures the Dask scale-out itself.)

Usage::

    .venv/bin/python benchmarks/run_throughput.py \
--model bench-out/fibsem/models/fibsem_t2_yhalf_x4 \
        -o bench-out/throughput [--methods cubic skeleton skelem] [--block 64,256,256] \
[--memory-scales 1 2 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

from skelem.evaluation.benchmark import machine_description
from skelem.io import write_volume

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t2" / "raw.tif"


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of a command."""
    t = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return seconds, int(proc.stderr.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("-o", "--output", default="bench-out/throughput")
    parser.add_argument("--methods", nargs="+", default=["cubic", "skeleton", "skelem"])
    parser.add_argument(
        "--memory-methods",
        nargs="*",
        default=["skeleton"],
        help="methods run on a volume and on the same volume twice as wide (peak memory vs size)",
    )
    parser.add_argument(
        "--block",
        default=None,
        help="block of the throughput runs (default: the CLI's, 128,512,512)",
    )
    parser.add_argument(
        "--memory-x",
        type=int,
        default=128,
        help="X width of the two memory-check inputs (one block across X keeps them cheap)",
    )
    parser.add_argument(
        "--memory-scales",
        nargs="+",
        type=int,
        default=[1, 2, 4],
        help="sizes of the memory-check inputs, in multiples of the band (mirrored copies along Y)",
    )
    parser.add_argument(
        "--memory-block",
        default="64,64,128",
        help="block of the memory check: several blocks along Z and Y for both inputs, so both "
        "have interior blocks (halo on both sides) and the same largest block",
    )
    parser.add_argument(
        "--memory-workers",
        nargs="+",
        type=int,
        default=[1],
        help="--workers values of the memory check; peak RSS is the largest of any process of "
        "the run (client or worker)",
    )
    parser.add_argument("--memory-only", action="store_true", help="skip the throughput rows")
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    iso = tifffile.imread(DATA)
    acquired = iso[::4]
    narrow = acquired[:, :, : args.memory_x]
    runs = [] if args.memory_only else [("63x250x250", acquired, args.methods, args.block, [1])]
    for scale in args.memory_scales:
        data = np.concatenate(
            [narrow if k % 2 == 0 else narrow[:, ::-1] for k in range(scale)], axis=1
        )
        runs.append(
            (
                "x".join(map(str, data.shape)),
                data,
                args.memory_methods,
                args.memory_block,
                args.memory_workers,
            )
        )
    skelem = str(Path(sys.executable).with_name("skelem"))
    rows = []
    for name, data, methods, block, worker_counts in runs:
        src = out / f"input_{name}.ome.zarr"
        if not src.exists():
            write_volume(src, data, (0.04, 0.01, 0.01))
        n_out = (4 * (data.shape[0] - 1) + 1) * data.shape[1] * data.shape[2]
        for method, workers in ((m, w) for m in methods for w in worker_counts):
            dst = out / f"restored_{name}_{method}.ome.zarr"
            shutil.rmtree(dst, ignore_errors=True)
            cmd = [skelem, "restore", str(src), "-o", str(dst), "--method", method, "-q",
                   "--workers", str(workers)]
            if block:
                cmd += ["--block", block]
            if method not in ("cubic", "linear", "nearest"):
                cmd += ["--model", args.model]
            seconds, peak_kib = run(cmd)
            row = {
                "input": name,
                "method": method,
                "block": block or "default",
                "workers": workers,
                "output_voxels": n_out,
                "seconds": round(seconds, 1),
                "voxels_per_second": round(n_out / seconds),
                "peak_rss_mib": round(peak_kib / 1024),
            }
            rows.append(row)
            print(row, flush=True)
            shutil.rmtree(dst, ignore_errors=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_description(),
            "command": " ".join(sys.argv), "threads": os.environ.get("OMP_NUM_THREADS", "default")}
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
