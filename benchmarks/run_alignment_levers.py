"""Alignment-stage levers (the weight of the denoising anchor) on the TUNING volume t1, x8.

Protocol of ``run_levers.py`` (``fibsem_medulla_t1`` Y 125-249, every 8th slice, profile none,
isotropic original as ground truth, central 96 x 96 lateral crop, border 8, data range 255). The
``base`` skeleton of ``run_levers.py`` is reused; one refiner (the default 16/3, t0 = 400) is
trained on it; then the alignment stage runs once per anchor weight on a copy, and each model
restores the crop with the default sampler. The unaligned refiner is the reference point.

Usage: ``.venv/bin/python benchmarks/run_alignment_levers.py --levers bench-out/levers``
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from skelem.config.models import build_config, save_config
from skelem.evaluation.benchmark import simulate_acquisition
from skelem.io import Volume, open_volume
from skelem.metrics import evaluate_arrays
from skelem.metrics.stationarity import z_texture_stationarity

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t1" / "raw.tif"
FACTOR = 8


def _copy_model(src: Path, dst: Path) -> None:
    if not dst.exists():
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints"))


def _set_config(model_dir: Path, cfg) -> None:
    from skelem.models.artifact import load_artifact

    art = load_artifact(model_dir)
    art.config = cfg
    art.save_manifest()
    save_config(cfg, model_dir / "config.json")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levers", default="bench-out/levers")
    ap.add_argument("--anchors", type=float, nargs="+", default=[0.1, 1.0])
    args = ap.parse_args()
    from skelem.inference.restore import RestoreOptions, restore_volume
    from skelem.models.artifact import load_artifact
    from skelem.training.pipeline import train_model

    levers = Path(args.levers)
    reference = np.asarray(open_volume(DATA).data[:, 125:250, :])
    acquired, gt = simulate_acquisition(reference, FACTOR)
    crop = (slice(None), slice(14, 110), slice(77, 173))
    voxel = (0.01 * FACTOR, 0.01, 0.01)
    eval_in = Volume(np.ascontiguousarray(acquired[crop]), voxel, "micrometer", "t1")
    eval_gt = gt[crop].astype(np.float32)
    vol = Volume(acquired, voxel, "micrometer", f"t1 x{FACTOR}")
    out_path = levers / "alignment_x8.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}

    def score(art, **opts):
        pred = restore_volume(eval_in, art, FACTOR, RestoreOptions(method="skelem", **opts),
                              input_units=True)
        s = evaluate_arrays(pred, eval_gt, data_range=255.0, border=8, factor=FACTOR,
                            acquired=eval_in.data.astype(np.float32))
        row = {k: float(s[k]) for k in ("psnr", "ssim", "hf_energy_ratio",
                                        "log_spectral_distance", "kid")}
        row["stationarity"] = z_texture_stationarity(pred[:, 8:-8, 8:-8], FACTOR)["stationarity"]
        return row

    base = load_artifact(levers / "models" / f"base_x{FACTOR}")
    cfg = base.config.model_dump()
    cfg["refiner"] = {"channels": 16, "depth": 3}
    cfg["diffusion"] = {**cfg["diffusion"], "t0": 400, "steps": 2}
    cfg["refiner_training"] = {**cfg["refiner_training"], "iterations": 1500, "patch_size": 64,
                               "learning_rate": 1e-3, "checkpoint_every": 250}
    cfg["alignment_training"] = {**cfg["alignment_training"], "iterations": 150, "batch_size": 4,
                                 "patch_size": 64, "learning_rate": 2e-4, "checkpoint_every": 20}
    refiner_dir = levers / "models" / f"base_x{FACTOR}_r16d3_t400"
    _copy_model(levers / "models" / f"base_x{FACTOR}", refiner_dir)
    _set_config(refiner_dir, build_config(cfg))
    art = train_model(vol, refiner_dir, build_config(cfg), ["skeleton", "refiner"])
    results["unaligned"] = score(art)
    out_path.write_text(json.dumps(results, indent=2))
    print("unaligned", results["unaligned"], flush=True)
    for anchor in args.anchors:
        name = f"anchor_{anchor:g}"
        cfg_a = build_config({**cfg, "alignment": {**cfg.get("alignment", {}),
                                                    "anchor_weight": anchor}})
        model_dir = levers / "models" / f"base_x{FACTOR}_r16d3_t400_{name}"
        _copy_model(refiner_dir, model_dir)
        _set_config(model_dir, cfg_a)
        art = train_model(vol, model_dir, cfg_a, ["skeleton", "refiner", "alignment"])
        results[name] = score(art)
        out_path.write_text(json.dumps(results, indent=2))
        print(name, results[name], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
