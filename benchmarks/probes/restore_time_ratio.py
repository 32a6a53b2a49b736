"""Issue 12, target 7: SkelEM's restore time over the skeleton's, interleaved, in one process.

The benchmark tables time each method once (or three times) while other work may share the
CPU, so their "time / skeleton" column moves with the load. Here the skeleton, SkelEM at its
default and SkelEM at ``--detail 0`` restore the headline crop (``crop_protocol``: t2's scored
half simulated x``s``, central 96 x 96) in turn, ``--reps`` times, on one torch thread; the
medians and their ratios to the skeleton's are printed. Given several models, they take turns
within every repetition too, and each one's times are also given over the first model's.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probes/restore_time_ratio.py \
        bench-out/fibsem_v7_x8/models/fibsem_t2_yhalf_x8 --factor 8 [OTHER_MODEL ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from crop_protocol import HALVES, crop_case  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "fibsem_medulla_t2" / "raw.tif"
VARIANTS = {
    "skeleton": {"method": "skeleton"},
    "skelem": {"method": "skelem"},
    "skelem-detail-0": {"method": "skelem", "detail": 0.0},
}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("model", nargs="+")
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    from skelem.inference.restore import RestoreOptions, restore_volume
    from skelem.models.artifact import load_artifact

    torch.set_num_threads(1)
    case = crop_case(DATA, HALVES["scored"], args.factor, "t2")
    artifacts = [load_artifact(m) for m in args.model]
    seconds = [{k: [] for k in VARIANTS} for _ in artifacts]
    for _ in range(args.reps):
        for name, options in VARIANTS.items():
            for artifact, times in zip(artifacts, seconds, strict=True):
                start = time.perf_counter()
                restore_volume(
                    case.eval_in, artifact, args.factor, RestoreOptions(**options), input_units=True
                )
                times[name].append(time.perf_counter() - start)
    for model, times in zip(args.model, seconds, strict=True):
        print(model)
        base = statistics.median(times["skeleton"])
        for name, values in times.items():
            median = statistics.median(values)
            first = statistics.median(seconds[0][name])
            runs = ", ".join(f"{v:.2f}" for v in values)
            print(
                f"  {name}: {runs} s; median {median:.2f} s = {median / base:.2f}x the "
                f"skeleton, {median / first:.2f}x the first model's"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
