"""Pretrained EM models on the headline volume: zero-shot, fine-tuned, and from scratch.

Data and protocol of ``run_fibsem.py``: ``fibsem_medulla_t2`` Y 125-249 (never seen by the
pretrained models, which trained on t1 and t2 Y 0-124), x``s`` simulated by keeping every s-th Z
slice (profile none), the isotropic original as ground truth, scores on the central
249 x 96 x 96 voxels with an 8-voxel border excluded, data range 255.

Three models per factor, each restored with the skeleton, SkelEM at ``--detail 0`` (the
deterministic output) and SkelEM at its default:
- ``zero-shot``: the shipped pretrained model, no training on this volume (input normalisation);
- ``fine-tuned``: ``skelem train --init pretrained`` with the default budget on this volume;
- ``scratch``: the default budget from random weights (the model of ``run_fibsem.py``, reused from
  ``--scratch-models`` when given, else trained here).
Fine-tuned and scratch use the same budget, so equal training time up to machine noise (the
training seconds are reported).

Usage: ``.venv/bin/python benchmarks/run_pretrained_eval.py --factor 8 \
-o bench-out/pretrained_eval --scratch-models bench-out/fibsem_v6_x8/models``
(``--zero-shot-only [--pretrained DIR]``: score a pretrained model as shipped, nothing trained;
``--finetune-lr LR``: fine-tune at another learning rate; ``--tta``: also the skeleton and the
deterministic output with test-time augmentation).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from crop_protocol import t2_case

from skelem.config.models import ExperimentConfig, build_config


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--factor", type=int, required=True)
    ap.add_argument("-o", "--output", default="bench-out/pretrained_eval")
    ap.add_argument("--scratch-models", help="folder holding fibsem_t2_yhalf_x<s> (run_fibsem)")
    ap.add_argument("--pretrained", help="the pretrained model (default: the shipped one)")
    ap.add_argument(
        "--zero-shot-only",
        action="store_true",
        help="score the pretrained model only (no fine-tuning, no scratch model)",
    )
    ap.add_argument(
        "--finetune-lr",
        type=float,
        help="learning rate of the fine-tuning's skeleton and refiner stages (default: the "
        "configuration's, 1e-3)",
    )
    ap.add_argument(
        "--tta",
        action="store_true",
        help="also score the skeleton and SkelEM --detail 0 with test-time augmentation",
    )
    args = ap.parse_args()
    from skelem.models.artifact import load_artifact
    from skelem.models.pretrained import pretrained_model_dir
    from skelem.training.pipeline import train_model

    factor = args.factor
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    case = t2_case("scored", factor)
    vol = case.volume
    path = out / f"x{factor}.json"
    results = json.loads(path.read_text()) if path.exists() else {}

    results["cubic"] = {"psnr": case.cubic_psnr()}
    pretrained = load_artifact(args.pretrained or pretrained_model_dir(factor))
    results["pretrained"] = str(args.pretrained or pretrained_model_dir(factor))
    cfg = ExperimentConfig().model_dump()
    cfg["degradation"]["factor"] = factor
    cfg = build_config(cfg)
    # fine-tuning keeps the pretrained networks (as `skelem train --init` does)
    tune = cfg.model_dump()
    for section in ("skeleton", "refiner", "diffusion_peer"):
        tune[section] = getattr(pretrained.config, section).model_dump()
    if args.finetune_lr:
        for stage in ("skeleton_training", "refiner_training"):
            tune[stage]["learning_rate"] = args.finetune_lr
    tune_cfg = build_config(tune)
    models = {"zero-shot": (pretrained, "input")}
    if args.zero_shot_only:
        return _score(models, case, factor, results, path, args.tta)
    tuned_dir = out / f"fine-tuned_x{factor}"
    t = time.perf_counter()
    tuned = train_model(vol, tuned_dir, tune_cfg, init_from=pretrained)
    results["fine-tuned_train_s"] = tuned.provenance.get("training_seconds")
    print(f"fine-tuned in {time.perf_counter() - t:.0f} s (this run)", flush=True)
    models["fine-tuned"] = (tuned, "model")
    scratch_dir = (
        Path(args.scratch_models) / f"fibsem_t2_yhalf_x{factor}"
        if args.scratch_models
        else out / f"scratch_x{factor}"
    )
    scratch = train_model(
        vol,
        scratch_dir,
        load_artifact(scratch_dir).config if (scratch_dir / "skelem-model.json").exists() else cfg,
    )
    results["scratch_train_s"] = scratch.provenance.get("training_seconds")
    models["scratch"] = (scratch, "model")
    return _score(models, case, factor, results, path, args.tta)


def _score(models: dict, case, factor: int, results: dict, path: Path, tta: bool = False) -> int:
    """Restore the crop with each model (skeleton, deterministic, default; with ``tta`` the
    first two again with test-time augmentation) and score it."""
    variants = [
        ("skeleton", {"method": "skeleton"}),
        ("skelem-detail-0", {"method": "skelem", "detail": 0.0}),
        ("skelem", {"method": "skelem"}),
    ]
    if tta:
        variants += [(f"{label}-tta", {**o, "tta": True}) for label, o in variants[:2]]
    for name, (art, normalize) in models.items():
        for label, opts in variants:
            row = case.score(art, normalize=normalize, **opts)
            results[f"{name}/{label}"] = row
            path.write_text(json.dumps(results, indent=2))
            print(
                f"x{factor} {name} {label}: PSNR {row['psnr']:.2f} "
                f"(cubic {results['cubic']['psnr']:.2f}) SSIM {row['ssim']:.3f} "
                f"HF {row['hf_energy_ratio']:.2f} LSD {row['log_spectral_distance']:.2f} "
                f"KID {row['kid']:.3f} stat {row['stationarity']:.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
