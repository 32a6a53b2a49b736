"""Benchmark every method on the real FIB-SEM (Drosophila medulla, 10 nm isotropic) at x4 and x8.

Data (``../shared/data``, see its PROVENANCE.md): ``fibsem_medulla_t2`` (250^3, uint8, with
neuron-body labels). It is split along Y into two non-overlapping halves:
- Y 0-124: isotropic reference + labels used ONLY to train the membrane predictor;
- Y 125-249: the benchmark volume. Anisotropy is simulated from it (keep every s-th slice along Z,
  slice profile none); every learned method trains on that anisotropic input only; the isotropic
  original is the ground truth.

Usage (from the repository root)::

    .venv/bin/python benchmarks/run_fibsem.py -o bench-out/fibsem [--factors 4 8] [--quick] \
        [--pretrained]

Writes ``report.md``, ``results.json`` and figures into the output directory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from skelem.cli.progress import TqdmProgress
from skelem.evaluation.benchmark import BenchmarkSpec, Budget, Dataset, run_benchmark

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t2"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", default="bench-out/fibsem")
    parser.add_argument("--factors", type=int, nargs="+", default=[4, 8])
    parser.add_argument(
        "--quick", action="store_true", help="small budgets (minutes), for a smoke run"
    )
    parser.add_argument("--iterations", type=int, help="override skeleton/refiner iterations")
    parser.add_argument(
        "--eval-lateral", type=int, default=96, help="evaluate on a central XxX crop (0: all)"
    )
    parser.add_argument(
        "--pretrained",
        action="store_true",
        help="also the shipped pretrained models' rows, zero-shot (they never saw Y 125-249)",
    )
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if not (DATA / "raw.tif").exists():
        print(f"real data not found at {DATA}", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, torch.get_num_threads()))
    budget = Budget.quick() if args.quick else Budget()
    if args.iterations:
        budget.skeleton_iterations = budget.refiner_iterations = args.iterations
        budget.alignment_iterations = max(10, args.iterations // 10)
    budget.eval_lateral = args.eval_lateral or None
    half_b = (slice(None), slice(125, 250), slice(None))
    half_a = (slice(None), slice(0, 125), slice(None))
    spec = BenchmarkSpec(
        report_dir=Path(args.output),
        datasets=[
            Dataset(
                "fibsem_t2_yhalf", DATA / "raw.tif", labels=DATA / "groundtruth_bodies.tif",
                crop=half_b,
            )
        ],
        factors=args.factors,
        budget=budget,
        membrane_train=(DATA / "raw.tif", DATA / "groundtruth_bodies.tif"),
        membrane_crop=half_a,
        overwrite=args.overwrite,
        pretrained=args.pretrained,
    )
    started = time.time()
    with TqdmProgress() as progress:
        print(run_benchmark(spec, progress))
    print(f"total {time.time() - started:.0f} s; command: {' '.join(sys.argv)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
