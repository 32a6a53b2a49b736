"""Probe: pretraining the skeleton on true Z pairs of an isotropic volume instead of XY pairs.

A user's volume is anisotropic, so ``skelem train`` can only learn from its lateral (XY) slices,
degraded along Y or X to play Z. The pretrained EM models are trained on *isotropic* FIB-SEM
(``fibsem_medulla_t1``), which also has real XZ and YZ planes: degrading those along Z gives
training pairs from the very planes (and the very direction) a restore works on. Whether the Z
direction of FIB-SEM differs from the lateral ones (milling vs beam) enough for that to matter is
what this probe measures.

Variants (same network, budget, seed and code; trained on all of t1, 250^3, isotropic 10 nm):

- ``xy``: the package's pairs, XY slices of t1 degraded along Y or X;
- ``z``: XZ and YZ slices of t1 degraded along Z (half of each batch from each plane);
- ``mix``: half of each batch from ``xy``, half from ``z``.

Each skeleton then restores, zero-shot, the central crop of a Y half of ``fibsem_medulla_t2``
(default: Y 0-124, the half the headline benchmark never scores; the probe's own restore: XZ and
YZ passes averaged, measured rows put back, as ``skeleton_phase_input.py``) and is scored against
its isotropic truth, next to cubic interpolation.

Usage: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probes/skeleton_axial_pairs.py --factor 8 \
-o bench-out/axial/x8 [--variants xy z mix] [--iterations 1500] [--half tuning]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crop_protocol import HALVES, crop_case  # noqa: E402
from skeleton_phase_input import restore, score_row  # noqa: E402

from skelem.config.models import ExperimentConfig, build_config  # noqa: E402
from skelem.data.interpolation import upsample  # noqa: E402
from skelem.data.normalize import PercentileNormalizer  # noqa: E402
from skelem.data.pairs import PairSampler  # noqa: E402
from skelem.io import open_volume  # noqa: E402
from skelem.metrics import evaluate_arrays  # noqa: E402
from skelem.models.unet import UNet2D  # noqa: E402
from skelem.seeds import numpy_rng  # noqa: E402
from skelem.training.loop import train_stage  # noqa: E402
from skelem.training.losses import SKELETON_LOSSES  # noqa: E402

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def samplers(variant: str, t1: np.ndarray, factor: int, patch: int, norm, seed: int) -> list:
    """The samplers whose batches are concatenated, in equal shares, for ``variant``."""

    def make(array: np.ndarray, axial_only: bool) -> PairSampler:
        s = PairSampler(array, factor, patch_size=patch, normalizer=norm, seed=seed)
        if axial_only:  # axis 1 of a transposed volume is the original Z
            s.orientations = [1]
        return s

    xy = make(t1, False)
    xz = make(np.ascontiguousarray(t1.transpose(1, 0, 2)), True)  # slices (Z, X)
    yz = make(np.ascontiguousarray(t1.transpose(2, 0, 1)), True)  # slices (Z, Y)
    return {"xy": [xy], "z": [xz, yz], "mix": [xy, xy, xz, yz]}[variant]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--variants", nargs="+", default=["xy", "z", "mix"])
    ap.add_argument("--half", choices=sorted(HALVES), default="tuning")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    case = crop_case(DATA / "fibsem_medulla_t2" / "raw.tif", HALVES[args.half], args.factor, "t2")
    t1 = np.asarray(open_volume(DATA / "fibsem_medulla_t1" / "raw.tif").data)
    base = ExperimentConfig().model_dump()
    base["degradation"]["factor"] = args.factor
    base["skeleton_training"]["seed"] = args.seed
    base["skeleton_training"]["iterations"] = args.iterations
    cfg = build_config(base)
    tcfg = cfg.skeleton_training
    train_norm = PercentileNormalizer.fit(t1)
    test_norm = PercentileNormalizer.fit(case.volume.data)
    loss = SKELETON_LOSSES[cfg.skeleton_loss]
    acquired = case.eval_in.data
    cubic = upsample(acquired.astype(np.float32), args.factor, axis=0, method="cubic")
    cubic_psnr = float(evaluate_arrays(cubic, case.eval_gt, data_range=255.0, border=8)["psnr"])
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    results = {"cubic_psnr": cubic_psnr, "args": vars(args)}
    for variant in args.variants:
        parts = samplers(variant, t1, args.factor, tcfg.patch_size, train_norm, tcfg.seed)
        share = tcfg.batch_size // len(parts)
        torch.manual_seed(tcfg.seed)
        net = UNet2D(
            1, 1, channels=cfg.skeleton.channels, depth=cfg.skeleton.depth, residual_input=True
        )

        def step_loss(model, step, parts=parts, share=share):
            batches = [
                s.sample(share, rng=numpy_rng(tcfg.seed, step, i)) for i, s in enumerate(parts)
            ]
            u = torch.from_numpy(np.concatenate([b[0] for b in batches]))
            p = torch.from_numpy(np.concatenate([b[1] for b in batches]))
            return loss(model(u), p)

        t = time.perf_counter()
        ema = train_stage(f"skeleton-{variant}", net, step_loss, tcfg)
        train_s = time.perf_counter() - t
        pred = restore(ema, acquired, args.factor, test_norm, use_phase=False)
        results[variant] = score_row(pred, case, cubic_psnr, train_s, variant)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
