"""Quality levers of the deterministic output (skeleton), one at a time, on a TUNING volume.

Tuning happens on ``fibsem_medulla_t1`` (never scored by the headline benchmark), Y 125-249
(250 x 125 x 250, uint8, 10 nm isotropic FIB-SEM). Anisotropy simulated by keeping every s-th Z
slice (profile none); the skeleton trains on that input only; ground truth the isotropic
original; PSNR/SSIM on the central 96 x 96 lateral crop, 8-voxel border excluded, data range 255.

Each variant changes one thing against the base (16 channels, depth 3, 64^2 patches, 1,500
iterations, batch 8). Restore-time levers are applied to every trained variant:
- ``tta``: ``--tta``, the mean over the 4 flips of each slice that keep the axial direction
  (the RESULTS figures were made with the equivalent volume flips, before ``--tta`` existed;
  ``test_tta_averages_the_flipped_skeletons`` pins the two equal within 2e-5; volume flips
  {}, {Z}, {Y,X}, {Z,Y,X}: each XZ/YZ slice sees identity, H flip, W flip, H+W flip);
- ``prior``: the measured residual (acquired - skeleton at measured rows) propagated linearly to
  the rows between (the deterministic part of SkelEM's residual prior; measured rows exact).

Usage: ``.venv/bin/python benchmarks/run_levers.py -o bench-out/levers --factors 8 4 \
--variants base iters4000``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from skelem.config.models import build_config
from skelem.data.interpolation import upsample
from skelem.evaluation.benchmark import simulate_acquisition
from skelem.io import Volume, open_volume
from skelem.metrics import evaluate_arrays

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t1" / "raw.tif"

VARIANTS = {
    "base": {},
    "iters4000": {"skeleton_training": {"iterations": 4000}},
    "iters8000": {"skeleton_training": {"iterations": 8000}},
    "depth4": {"skeleton": {"channels": 16, "depth": 4}},
    "patch128": {"skeleton_training": {"patch_size": 128}},
    "ch24": {"skeleton": {"channels": 24, "depth": 3}},
    "ch32": {"skeleton": {"channels": 32, "depth": 3}},
    "iters6000": {"skeleton_training": {"iterations": 6000}},
    "depth4_iters6000": {
        "skeleton": {"channels": 16, "depth": 4},
        "skeleton_training": {"iterations": 6000},
    },
    "depth4_iters4000": {
        "skeleton": {"channels": 16, "depth": 4},
        "skeleton_training": {"iterations": 4000},
    },
    "lr1e-3": {"skeleton_training": {"learning_rate": 1e-3}},
    "batch16": {"skeleton_training": {"batch_size": 16}},
    "mse": {"skeleton_loss": "mse"},
    "depth4_lr1e-3": {
        "skeleton": {"channels": 16, "depth": 4},
        "skeleton_training": {"learning_rate": 1e-3},
    },
    "mse_depth4": {"skeleton_loss": "mse", "skeleton": {"channels": 16, "depth": 4}},
    "ch32_lr1e-3": {
        "skeleton": {"channels": 32, "depth": 3},
        "skeleton_training": {"learning_rate": 1e-3},
    },
}


def config_for(variant: str, factor: int):
    base = {
        "degradation": {"factor": factor},
        "skeleton_training": {
            "iterations": 1500, "patch_size": 64, "batch_size": 8, "checkpoint_every": 250
        },
    }
    for key, val in VARIANTS[variant].items():
        base[key] = {**base.get(key, {}), **val} if isinstance(val, dict) else val
    return build_config(base)


def restore_skeleton(vol: Volume, artifact, factor: int, tta: bool = False) -> np.ndarray:
    from skelem.inference.restore import RestoreOptions, restore_volume

    options = RestoreOptions(method="skeleton", tta=tta)
    return restore_volume(vol, artifact, factor, options, input_units=True)


def with_prior(pred: np.ndarray, acquired: np.ndarray, factor: int) -> np.ndarray:
    residual = acquired.astype(np.float32) - pred[::factor]
    return pred + upsample(residual, factor, axis=0, method="linear")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-o", "--output", default="bench-out/levers")
    ap.add_argument("--factors", type=int, nargs="+", default=[8, 4])
    ap.add_argument("--variants", nargs="+", default=["base", "iters4000", "depth4"])
    args = ap.parse_args()
    from skelem.training.pipeline import train_model

    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    reference = np.asarray(open_volume(DATA).data[:, 125:250, :])
    results_path = out_dir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for factor in args.factors:
        acquired, gt = simulate_acquisition(reference, factor)
        crop = (slice(None), slice(14, 110), slice(77, 173))
        eval_in = Volume(
            np.ascontiguousarray(acquired[crop]), (0.01 * factor, 0.01, 0.01), "micrometer", "t1"
        )
        eval_gt = gt[crop].astype(np.float32)

        def score(pred):
            # score is called only in the iteration that defines it (B023 does not apply)
            s = evaluate_arrays(
                pred,
                eval_gt,  # noqa: B023
                data_range=255.0,
                border=8,
                factor=factor,  # noqa: B023
                acquired=eval_in.data.astype(np.float32),  # noqa: B023
            )
            return {
                k: float(s[k])
                for k in ("psnr", "ssim", "hf_energy_ratio", "log_spectral_distance", "kid")
                if k in s
            }

        cubic = upsample(eval_in.data.astype(np.float32), factor, axis=0, method="cubic")
        results.setdefault(f"x{factor}", {})["cubic"] = score(cubic)
        for variant in args.variants:
            key = f"x{factor}/{variant}"
            if key in results.get(f"x{factor}", {}).get("_done", []):
                continue
            cfg = config_for(variant, factor)
            vol = Volume(acquired, (0.01 * factor, 0.01, 0.01), "micrometer", f"t1 x{factor}")
            t = time.perf_counter()
            artifact = train_model(
                vol, out_dir / "models" / f"{variant}_x{factor}", cfg, ["skeleton"]
            )
            train_s = time.perf_counter() - t
            row = {"train_s": round(train_s, 1)}
            t = time.perf_counter()
            plain = restore_skeleton(eval_in, artifact, factor)
            row["restore_s"] = round(time.perf_counter() - t, 2)
            row["plain"] = score(plain)
            row["prior"] = score(with_prior(plain, eval_in.data, factor))
            t = time.perf_counter()
            tta = restore_skeleton(eval_in, artifact, factor, tta=True)
            row["tta_restore_s"] = round(time.perf_counter() - t, 2)
            row["tta"] = score(tta)
            row["tta_prior"] = score(with_prior(tta, eval_in.data, factor))
            results[f"x{factor}"][variant] = row
            results[f"x{factor}"].setdefault("_done", []).append(key)
            results_path.write_text(json.dumps(results, indent=2))
            c = results[f"x{factor}"]["cubic"]["psnr"]
            print(
                f"x{factor} {variant}: train {train_s:.0f}s  plain {row['plain']['psnr'] - c:+.2f}"
                f"  prior {row['prior']['psnr'] - c:+.2f}  tta {row['tta']['psnr'] - c:+.2f}"
                f"  tta+prior {row['tta_prior']['psnr'] - c:+.2f} dB over cubic ({c:.2f})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
