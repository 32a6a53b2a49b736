"""Probe: does telling the skeleton where the measured rows are (a phase channel) raise fidelity?

The skeleton sees only the cubic interpolant ``U``; a convolutional network can infer each row's
distance to the nearest measured row from the texture alone (measured rows are sharp and noisy,
interpolated ones smooth), but only approximately. This probe trains, with the same batches, the
same budget and the same code, a 1-channel skeleton (``U``, the package's design) and a 2-channel
one (``U`` and ``d = min(k, s - k) / (s / 2)``, ``k`` = row index mod ``s``, 0 at measured rows),
restores the central crop of a Y half of ``fibsem_medulla_t2`` (XZ and YZ passes averaged, measured
rows put back) and prints both PSNRs against cubic interpolation.

Default data: t2 Y 0-124, the half the headline benchmark never scores (for tuning).

``--ensemble A.npy B.npy`` scores the mean of saved predictions (e.g. two seeds' skeletons).

Usage: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probes/skeleton_phase_input.py --factor 8 \
-o bench-out/phase/x8 [--variants plain phase] [--iterations 1500]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crop_protocol import HALVES, crop_case  # noqa: E402

from skelem.config.models import ExperimentConfig, build_config  # noqa: E402
from skelem.data.interpolation import upsample  # noqa: E402
from skelem.data.normalize import PercentileNormalizer  # noqa: E402
from skelem.data.pairs import PairSampler  # noqa: E402
from skelem.metrics import evaluate_arrays  # noqa: E402
from skelem.models.unet import UNet2D, apply_padded  # noqa: E402
from skelem.seeds import numpy_rng  # noqa: E402
from skelem.training.loop import train_stage  # noqa: E402
from skelem.training.losses import SKELETON_LOSSES  # noqa: E402

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fibsem_medulla_t2"


def phase_channel(rows: int, factor: int, first: int = 0) -> np.ndarray:
    """``(rows,)`` distance of each row to its nearest measured row, in half intervals."""
    k = (np.arange(rows) - first) % factor
    return (np.minimum(k, factor - k) / (factor / 2)).astype(np.float32)


def with_phase(u: torch.Tensor, phase: np.ndarray) -> torch.Tensor:
    ph = torch.from_numpy(phase)[None, None, :, None].expand(u.shape[0], 1, u.shape[2], u.shape[3])
    return torch.cat([u, ph], dim=1)


def restore(net: UNet2D, acquired: np.ndarray, factor: int, norm, use_phase: bool) -> np.ndarray:
    """XZ and YZ passes over the cubic interpolant, averaged; measured rows put back."""
    u = norm.normalize(upsample(acquired.astype(np.float32), factor, axis=0, method="cubic"))
    phase = phase_channel(u.shape[0], factor)
    out = np.zeros_like(u)
    with torch.no_grad():
        for axis in (1, 2):  # XZ slices (one per Y), YZ slices (one per X)
            slices = np.moveaxis(u, axis, 0)[:, None]  # (N, 1, Z', L)
            x = torch.from_numpy(np.ascontiguousarray(slices))
            if use_phase:
                x = with_phase(x, phase)
            pred = torch.cat([apply_padded(net, x[i : i + 16]) for i in range(0, len(x), 16)])
            out += np.moveaxis(pred[:, 0].numpy(), 0, axis)
    out /= 2
    out[::factor] = u[::factor]
    return norm.denormalize(out)


def score_row(pred: np.ndarray, case, cubic_psnr: float, train_s: float, label: str) -> dict:
    """Score one probe restore of ``case``'s crop against its truth, print and return the row."""
    factor = case.factor
    s = evaluate_arrays(
        pred,
        case.eval_gt,
        data_range=255.0,
        border=8,
        factor=factor,
        acquired=case.eval_in.data.astype(np.float32),
    )
    row = {k: float(s[k]) for k in ("psnr", "ssim", "hf_energy_ratio", "log_spectral_distance")}
    row["gain_over_cubic"] = row["psnr"] - cubic_psnr
    row["train_s"] = round(train_s, 1)
    print(
        f"x{factor} {label}: {row['psnr']:.2f} dB ({row['gain_over_cubic']:+.2f} "
        f"over cubic {cubic_psnr:.2f}), SSIM {row['ssim']:.3f}, train {train_s:.0f} s",
        flush=True,
    )
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--variants", nargs="+", default=["plain", "phase"])
    ap.add_argument("--half", choices=sorted(HALVES), default="tuning")
    ap.add_argument(
        "--ensemble",
        nargs="+",
        default=[],
        help="saved predictions (.npy) to average and score, no training",
    )
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    case = crop_case(DATA / "raw.tif", HALVES[args.half], args.factor, "t2")
    base = ExperimentConfig().model_dump()
    base["degradation"]["factor"] = args.factor
    base["skeleton_training"]["seed"] = args.seed
    base["skeleton_training"]["iterations"] = args.iterations
    cfg = build_config(base)
    tcfg = cfg.skeleton_training
    norm = PercentileNormalizer.fit(case.volume.data)
    sampler = PairSampler(
        case.volume.data, args.factor, patch_size=tcfg.patch_size, normalizer=norm, seed=tcfg.seed
    )
    loss = SKELETON_LOSSES[cfg.skeleton_loss]
    acquired = case.eval_in.data
    cubic = upsample(acquired.astype(np.float32), args.factor, axis=0, method="cubic")
    cubic_psnr = float(evaluate_arrays(cubic, case.eval_gt, data_range=255.0, border=8)["psnr"])
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    results = {"cubic_psnr": cubic_psnr, "args": vars(args)}
    if args.ensemble:
        pred = np.mean([np.load(p) for p in args.ensemble], axis=0)
        s = evaluate_arrays(pred, case.eval_gt, data_range=255.0, border=8)
        print(
            f"ensemble of {len(args.ensemble)}: {s['psnr']:.2f} dB "
            f"({s['psnr'] - cubic_psnr:+.2f} over cubic {cubic_psnr:.2f})"
        )
        return 0
    for variant in args.variants:
        use_phase = variant == "phase"
        torch.manual_seed(tcfg.seed)
        net = UNet2D(2 if use_phase else 1, 1, channels=args.channels, depth=3, residual_input=True)

        def step_loss(model, step, use_phase=use_phase):
            u, p, rows = sampler.sample(
                tcfg.batch_size, rng=numpy_rng(tcfg.seed, step), return_rows=True
            )
            u, p = torch.from_numpy(u), torch.from_numpy(p)
            if use_phase:
                first = int(np.flatnonzero(rows[0, 0, :, 0])[0])
                u = with_phase(u, phase_channel(u.shape[2], args.factor, first))
            return loss(model(u), p)

        t = time.perf_counter()
        ema = train_stage(f"skeleton-{variant}", net, step_loss, tcfg)
        train_s = time.perf_counter() - t
        pred = restore(ema, acquired, args.factor, norm, use_phase)
        results[variant] = score_row(pred, case, cubic_psnr, train_s, variant)
        np.save(out / f"{variant}_seed{args.seed}.npy", pred.astype(np.float32))
        (out / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
