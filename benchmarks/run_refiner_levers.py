"""Refiner levers (capacity, stochastic sampling, start level, steps) on the TUNING volume t1.

Same data and protocol as ``run_levers.py`` (``fibsem_medulla_t1`` Y 125-249, every s-th slice,
profile none, isotropic original as ground truth, central 96 x 96 lateral crop, border 8, data
range 255). The skeleton of ``run_levers.py``'s ``base`` variant is reused (frozen); each refiner
variant trains on top of it; then each sampling setting restores the crop once.

Usage: ``.venv/bin/python benchmarks/run_refiner_levers.py --levers bench-out/levers --factor 8``
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from skelem.config.models import build_config, save_config
from skelem.evaluation.benchmark import simulate_acquisition
from skelem.io import Volume, open_volume
from skelem.metrics import evaluate_arrays
from skelem.metrics.stationarity import z_texture_stationarity

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t1" / "raw.tif"

REFINERS = {
    "r6d2": {"refiner": {"channels": 6, "depth": 2}},
    "r16d3": {"refiner": {"channels": 16, "depth": 3}},
    "r12d3": {"refiner": {"channels": 12, "depth": 3}},
}
SAMPLING = [  # (name, steps, t0, eta)
    ("ddim5-t200", 5, 200, 0.0),
    ("ddim2-t200", 2, 200, 0.0),
    ("eta0.5-2-t200", 2, 200, 0.5),
    ("eta1-2-t200", 2, 200, 1.0),
    ("eta1-5-t200", 5, 200, 1.0),
    ("ddim2-t400", 2, 400, 0.0),
    ("eta1-2-t400", 2, 400, 1.0),
    ("eta1-2-t600", 2, 600, 1.0),
]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--levers", default="bench-out/levers")
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--refiners", nargs="+", default=["r6d2", "r16d3"])
    ap.add_argument("--iterations", type=int, default=1500)
    args = ap.parse_args()
    from skelem.inference.restore import RestoreOptions, restore_volume
    from skelem.models.artifact import load_artifact
    from skelem.training.pipeline import train_model

    factor = args.factor
    levers = Path(args.levers)
    reference = np.asarray(open_volume(DATA).data[:, 125:250, :])
    acquired, gt = simulate_acquisition(reference, factor)
    crop = (slice(None), slice(14, 110), slice(77, 173))
    eval_in = Volume(
        np.ascontiguousarray(acquired[crop]), (0.01 * factor, 0.01, 0.01), "micrometer", "t1"
    )
    eval_gt = gt[crop].astype(np.float32)
    results_path = levers / f"refiner_x{factor}.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}

    def score(pred):
        s = evaluate_arrays(pred, eval_gt, data_range=255.0, border=8, factor=factor,
                            acquired=eval_in.data.astype(np.float32))
        out = {
            k: float(s[k])
            for k in ("psnr", "ssim", "hf_energy_ratio", "log_spectral_distance", "kid")
        }
        out["stationarity"] = z_texture_stationarity(pred[:, 8:-8, 8:-8], factor)["stationarity"]
        return out

    skeleton_dir = levers / "models" / f"base_x{factor}"
    skel_art = load_artifact(skeleton_dir)
    results["reference"] = {
        "stationarity": z_texture_stationarity(eval_gt[:, 8:-8, 8:-8], factor)["stationarity"]
    }
    results["skeleton"] = score(
        restore_volume(
            eval_in, skel_art, factor, RestoreOptions(method="skeleton"), input_units=True
        )
    )
    for name in args.refiners:
        model_dir = levers / "models" / f"base_x{factor}_{name}"
        if not model_dir.exists():
            shutil.copytree(skeleton_dir, model_dir, ignore=shutil.ignore_patterns("checkpoints"))
        art = load_artifact(model_dir)
        cfg = art.config.model_dump()
        cfg["refiner"] = REFINERS[name]["refiner"]
        cfg["refiner_training"] = {
            **cfg["refiner_training"],
            "iterations": args.iterations,
            "patch_size": 64,
            "learning_rate": 1e-3,
            "checkpoint_every": 250,
        }
        cfg = build_config(cfg)
        art.config = cfg
        art.save_manifest()
        save_config(cfg, model_dir / "config.json")
        vol = Volume(acquired, (0.01 * factor, 0.01, 0.01), "micrometer", f"t1 x{factor}")
        t = time.perf_counter()
        art = train_model(vol, model_dir, cfg, ["skeleton", "refiner"])
        row = results.setdefault(name, {})
        row.setdefault("train_s", round(time.perf_counter() - t, 1))
        for sname, steps, t0, eta in SAMPLING:
            t = time.perf_counter()
            pred = restore_volume(
                eval_in,
                art,
                factor,
                RestoreOptions(method="skelem", steps=steps, t0=t0, eta=eta),
                input_units=True,
            )
            row[sname] = {**score(pred), "restore_s": round(time.perf_counter() - t, 2)}
            results_path.write_text(json.dumps(results, indent=2))
            r, sk = row[sname], results["skeleton"]
            print(
                f"x{factor} {name} {sname}: dPSNR {r['psnr'] - sk['psnr']:+.2f}  "
                f"HF {r['hf_energy_ratio']:.2f} "
                f"(skel {sk['hf_energy_ratio']:.2f})  LSD {r['log_spectral_distance']:.2f} "
                f"({sk['log_spectral_distance']:.2f})  KID {r['kid']:.3f} ({sk['kid']:.3f})  "
                f"stat {r['stationarity']:.2f} ({sk['stationarity']:.2f})  {r['restore_s']:.1f}s",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
