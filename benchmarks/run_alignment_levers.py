"""Alignment-stage levers (loss terms, weights) and the ``--detail`` knob, on the TUNING volume t1.

Protocol of ``run_levers.py`` (``fibsem_medulla_t1`` Y 125-249, every s-th slice, profile none,
isotropic original as ground truth, central 96 x 96 lateral crop, border 8, data range 255). The
``base`` skeleton of ``run_levers.py`` is reused; one refiner (the default 16/3, t0 = 400) is
trained on it; then the alignment stage runs once per variant on a copy, and each model restores
the crop with the default sampler at every ``--details`` setting. The unaligned refiner is the
reference point.

Variants (alignment settings; everything else as the defaults):
- ``l1``: the alignment before texture terms (raw L1 cycles, anchor 0.1, no texture term);
- ``anchor1``: as ``l1`` with anchor weight 1.0;
- ``tex0.05``, ``tex0.2``, ``tex1``: blurred structure terms (sigma 1) + texture weight 0.05/0.2/1.

Usage: ``.venv/bin/python benchmarks/run_alignment_levers.py --levers bench-out/levers \
--factor 8 --variants l1 tex0.05 --details 0 0.5 1``
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from crop_protocol import HALVES, crop_case

from skelem.config.models import build_config, save_config
from skelem.metrics.stationarity import z_texture_stationarity

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t1" / "raw.tif"

VARIANTS = {
    "l1": {"anchor_weight": 0.1, "texture_weight": 0.0, "structure_sigma": 0.0},
    "anchor1": {"anchor_weight": 1.0, "texture_weight": 0.0, "structure_sigma": 0.0},
    "tex0.05": {"texture_weight": 0.05, "structure_sigma": 1.0},
    "tex0.2": {"texture_weight": 0.2, "structure_sigma": 1.0},
    "tex1": {"texture_weight": 1.0, "structure_sigma": 1.0},
}


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
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--variants", nargs="+", default=["l1", "tex0.05"], choices=list(VARIANTS))
    ap.add_argument("--details", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    ap.add_argument("--alignment-iterations", type=int, default=150)
    args = ap.parse_args()
    from skelem.models.artifact import load_artifact
    from skelem.training.pipeline import train_model

    factor = args.factor
    levers = Path(args.levers)
    case = crop_case(DATA, HALVES["scored"], factor, "t1")
    vol, eval_gt = case.volume, case.eval_gt
    out_path = levers / f"alignment_x{factor}.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    score = case.score

    def report(name, row):
        print(f"x{factor} {name}: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f} "
              f"HF {row['hf_energy_ratio']:.2f} LSD {row['log_spectral_distance']:.2f} "
              f"KID {row['kid']:.3f} stat {row['stationarity']:.2f} "
              f"{row['restore_s']:.1f}s", flush=True)

    base = load_artifact(levers / "models" / f"base_x{factor}")
    results["reference"] = {
        "stationarity": z_texture_stationarity(eval_gt[:, 8:-8, 8:-8], factor)["stationarity"]
    }
    results["skeleton"] = score(base, method="skeleton")
    report("skeleton", results["skeleton"])
    cfg = base.config.model_dump()
    cfg["refiner"] = {"channels": 16, "depth": 3}
    cfg["diffusion"] = {**cfg["diffusion"], "t0": 400, "steps": 2}
    cfg["refiner_training"] = {**cfg["refiner_training"], "iterations": 1500, "patch_size": 64,
                               "learning_rate": 1e-3, "checkpoint_every": 250}
    cfg["alignment_training"] = {**cfg["alignment_training"],
                                 "iterations": args.alignment_iterations, "batch_size": 4,
                                 "patch_size": 64, "learning_rate": 2e-4, "checkpoint_every": 20}
    refiner_dir = levers / "models" / f"base_x{factor}_r16d3_t400"
    _copy_model(levers / "models" / f"base_x{factor}", refiner_dir)
    _set_config(refiner_dir, build_config(cfg))
    art = train_model(vol, refiner_dir, build_config(cfg), ["skeleton", "refiner"])
    for detail in args.details:
        name = f"unaligned/detail{detail:g}"
        results[name] = score(art, method="skelem", detail=detail)
        report(name, results[name])
    out_path.write_text(json.dumps(results, indent=2))
    for variant in args.variants:
        cfg_a = build_config({**cfg, "alignment": {**cfg.get("alignment", {}),
                                                    **VARIANTS[variant]}})
        model_dir = levers / "models" / f"base_x{factor}_r16d3_t400_{variant}"
        _copy_model(refiner_dir, model_dir)
        _set_config(model_dir, cfg_a)
        t = time.perf_counter()
        art = train_model(vol, model_dir, cfg_a, ["skeleton", "refiner", "alignment"])
        print(f"{variant}: alignment {time.perf_counter() - t:.0f} s", flush=True)
        for detail in args.details:
            name = f"{variant}/detail{detail:g}"
            results[name] = score(art, method="skelem", detail=detail)
            report(name, results[name])
            out_path.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
