"""Seed-to-seed spread of the headline numbers: the default model trained with other seeds.

Data and protocol of ``run_fibsem.py`` (``fibsem_medulla_t2`` Y 125-249, x``s`` simulated by
keeping every s-th Z slice, profile none, isotropic original as ground truth, central
249 x 96 x 96 voxels, border 8, range 255). For each ``--seeds`` value the default configuration
trains (skeleton, refiner, alignment) with every stage's seed set to it, and restores with that
seed: the skeleton, SkelEM at ``--detail 0`` and SkelEM at its default. Seed 0 is the headline
run's model when ``--seed0-models`` is given.

Usage: ``.venv/bin/python benchmarks/run_seed_spread.py --factor 8 --seeds 1 \
--seed0-models bench-out/fibsem_v6_x8/models -o bench-out/seeds``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from crop_protocol import HALVES, crop_case

from skelem.config.models import ExperimentConfig, build_config

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t2" / "raw.tif"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--factor", type=int, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--seed0-models", help="folder holding fibsem_t2_yhalf_x<s> (run_fibsem)")
    ap.add_argument("-o", "--output", default="bench-out/seeds")
    args = ap.parse_args()
    from skelem.models.artifact import load_artifact
    from skelem.training.pipeline import train_model

    factor = args.factor
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    case = crop_case(DATA, HALVES["scored"], factor, "t2")
    vol = case.volume
    path = out / f"x{factor}.json"
    results = json.loads(path.read_text()) if path.exists() else {}

    def score(art, seed, **opts):
        return case.score(art, seed=seed, **opts)

    models = {}
    if args.seed0_models:
        models[0] = load_artifact(Path(args.seed0_models) / f"fibsem_t2_yhalf_x{factor}")
    for seed in args.seeds:
        base = ExperimentConfig().model_dump()
        base["degradation"]["factor"] = factor
        for stage in ("skeleton_training", "refiner_training", "alignment_training"):
            base[stage]["seed"] = seed
        t = time.perf_counter()
        models[seed] = train_model(vol, out / f"seed{seed}_x{factor}", build_config(base))
        print(f"seed {seed}: trained in {time.perf_counter() - t:.0f} s", flush=True)
    for seed, art in models.items():
        for label, opts in (("skeleton", {"method": "skeleton"}),
                            ("skelem-detail-0", {"method": "skelem", "detail": 0.0}),
                            ("skelem", {"method": "skelem"})):
            row = score(art, seed, **opts)
            results[f"seed{seed}/{label}"] = row
            path.write_text(json.dumps(results, indent=2))
            print(f"x{factor} seed {seed} {label}: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f} "
                  f"HF {row['hf_energy_ratio']:.2f} LSD {row['log_spectral_distance']:.2f} "
                  f"KID {row['kid']:.3f} stat {row['stationarity']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
