"""Probe: does the skeleton collapse to the identity correction, and when?

Trains only the skeleton on a Y half of ``fibsem_medulla_t2`` (default Y 0-124, the half the
headline benchmark never scores, for tuning; ``--half scored`` is the headline crop of
``run_seed_spread.py``), x``s`` simulated, with the given seed and configuration overrides,
and prints, every 100 steps, the mean training loss over those steps divided by the loss of the
identity correction (the cubic input itself) on the same batches. A healthy skeleton falls well
below 1; a collapsed one sits at 1. Then scores the skeleton's restoration of the half's central
crop (``crop_protocol``) against cubic interpolation.

Usage: ``.venv/bin/python benchmarks/probes/skeleton_collapse.py --factor 8 --seed 1 \
-o bench-out/collapse/s1 [--lr 1e-3] [--loss mse]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crop_protocol import HALVES, crop_case  # noqa: E402

import skelem.training.stages as st  # noqa: E402
from skelem.config.models import ExperimentConfig, build_config  # noqa: E402
from skelem.training.losses import SKELETON_LOSSES  # noqa: E402

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fibsem_medulla_t2"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--loss", default="mse_ssim")
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--half", choices=sorted(HALVES), default="tuning")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    from skelem.training.pipeline import train_model

    case = crop_case(DATA / "raw.tif", HALVES[args.half], args.factor, "t2")
    base = ExperimentConfig().model_dump()
    base["degradation"]["factor"] = args.factor
    base["skeleton_training"]["seed"] = args.seed
    base["skeleton_loss"] = args.loss
    base["skeleton"]["depth"] = args.depth
    if args.lr:
        base["skeleton_training"]["learning_rate"] = args.lr
    cfg = build_config(base)

    last_u = {}
    batch = st._batch

    def recording_batch(*a, **k):
        u, p = batch(*a, **k)
        last_u["u"] = u
        return u, p

    loss_fn = SKELETON_LOSSES[args.loss]
    trace: list[tuple[float, float]] = []

    def recording_loss(pred, target):
        value = loss_fn(pred, target)
        trace.append((float(value.detach()), float(loss_fn(last_u["u"], target))))
        return value

    st._batch = recording_batch
    st.SKELETON_LOSSES[args.loss] = recording_loss
    art = train_model(case.volume, Path(args.output), cfg, ["skeleton"])
    rows = []
    for start in range(0, len(trace), 100):
        chunk = trace[start:start + 100]
        ratio = sum(a for a, _ in chunk) / sum(b for _, b in chunk)
        rows.append((start + len(chunk), round(ratio, 3)))
        print(f"step {start + len(chunk):5d}: loss / identity loss = {ratio:.3f}", flush=True)
    final = art.provenance.get("skeleton_error_vs_cubic")
    print(f"skeleton_error_vs_cubic {final}")
    from skelem.data.interpolation import upsample
    from skelem.metrics import evaluate_arrays

    cubic = upsample(case.eval_in.data.astype(np.float32), args.factor, axis=0, method="cubic")
    cubic_psnr = float(evaluate_arrays(cubic, case.eval_gt, data_range=255.0, border=8)["psnr"])
    scores = {m: case.score(art, method=m) for m in ("skeleton",)}
    scores["skeleton"]["gain_over_cubic"] = scores["skeleton"]["psnr"] - cubic_psnr
    print(f"cubic {cubic_psnr:.2f} dB, skeleton {scores['skeleton']['psnr']:.2f} dB "
          f"(+{scores['skeleton']['gain_over_cubic']:.2f})")
    Path(args.output, "trace.json").write_text(
        json.dumps({"rows": rows, "final": final, "cubic_psnr": cubic_psnr, "scores": scores,
                    "args": vars(args)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
