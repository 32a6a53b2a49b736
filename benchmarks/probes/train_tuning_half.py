"""Train a model on the tuning half of t2 at the benchmark's default budget (tuning data only).

Choosing a restore default for models that ``skelem train`` makes on the user's volume needs such
models trained on data the headline benchmark never scores: ``fibsem_medulla_t2`` Y 0-124,
simulated x``F`` (every F-th Z slice, profile none), the budget of ``run_fibsem.py``
(``Budget()``). Pass the model to ``probes/detail_filter.py --model`` to tune on the same half.

Usage: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probes/train_tuning_half.py --factor 8
-o bench-out/tuning_models``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from crop_protocol import t2_case  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--factor", type=int, required=True)
    ap.add_argument("-o", "--output", default="bench-out/tuning_models")
    args = ap.parse_args()
    from skelem.cli.progress import TqdmProgress
    from skelem.evaluation.benchmark import Budget
    from skelem.training.pipeline import train_model

    case = t2_case("tuning", args.factor)
    model_dir = Path(args.output) / f"t2_tuning_x{args.factor}"
    started = time.time()
    with TqdmProgress() as progress:
        train_model(case.volume, model_dir, Budget().config(args.factor), progress=progress)
    print(f"{model_dir}: trained in {time.time() - started:.0f} s on {case.volume.shape}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
