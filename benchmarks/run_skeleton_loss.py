"""Skeleton loss comparison at x8 on the real FIB-SEM: L1 + SSIM collapses, MSE + SSIM does not.

Data: ``fibsem_medulla_t2`` Y 125-249 (the FIB-SEM benchmark volume), x8 simulated (every 8th
slice, profile none: 32 slices); the skeleton trains on those slices only (patch 64, batch 8,
seed 0); ground truth is the isotropic original. PSNR on a central 96-voxel-wide X band, 8-voxel
border excluded, data range 255, of cubic interpolation and of each skeleton.

Usage (from the repository root)::

    .venv/bin/python benchmarks/run_skeleton_loss.py -o bench-out/skeleton_loss \
[--iterations 400 1500]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from skelem.config.models import build_config
from skelem.evaluation.benchmark import _load, machine_description, simulate_acquisition
from skelem.inference.restore import RestoreOptions, restore_volume
from skelem.io import Volume
from skelem.metrics import psnr
from skelem.training.pipeline import train_model

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t2" / "raw.tif"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", default="bench-out/skeleton_loss")
    parser.add_argument("--factor", type=int, default=8)
    parser.add_argument("--iterations", type=int, nargs="+", default=[400, 1500])
    parser.add_argument("--losses", nargs="+", default=["l1_ssim", "mse_ssim"])
    args = parser.parse_args()
    if not DATA.exists():
        print(f"real data not found at {DATA}", file=sys.stderr)
        return 2
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    reference, _ = _load(DATA, (slice(None), slice(125, 250), slice(None)))
    acquired, gt = simulate_acquisition(reference, args.factor)
    voxel = (0.01 * args.factor, 0.01, 0.01)
    band = (slice(None), slice(None), slice(77, 173))
    eval_in = Volume(np.ascontiguousarray(acquired[band]), voxel, "micrometer", "x band")
    inner = (slice(8, -8),) * 3
    truth = gt[band].astype(np.float32)[inner]

    def score(artifact, method: str) -> float:
        pred = restore_volume(
            eval_in, artifact, args.factor, RestoreOptions(method=method), input_units=True
        )
        return round(psnr(pred[inner], truth, 255.0), 3)

    rows = []
    cubic = score(None, "cubic")
    print(f"cubic {cubic} dB", flush=True)
    for loss in args.losses:
        for iterations in args.iterations:
            cfg = build_config(
                {
                    "degradation": {"factor": args.factor},
                    "skeleton_loss": loss,
                    "skeleton_training": {
                        "iterations": iterations, "patch_size": 64, "checkpoint_every": 500
                    },
                }
            )
            model_dir = out / f"{loss}_{iterations}"
            shutil.rmtree(model_dir, ignore_errors=True)
            started = time.perf_counter()
            artifact = train_model(
                Volume(acquired, voxel, "micrometer", "t2 Y-half"), model_dir, cfg, ["skeleton"]
            )
            seconds = time.perf_counter() - started
            value = score(artifact, "skeleton")
            rows.append(
                {
                    "loss": loss,
                    "iterations": iterations,
                    "psnr": value,
                    "gain_over_cubic": round(value - cubic, 3),
                    "train_seconds": round(seconds),
                }
            )
            print(rows[-1], flush=True)
    (out / "results.json").write_text(
        json.dumps(
            {
                "factor": args.factor,
                "cubic_psnr": cubic,
                "rows": rows,
                "machine": machine_description(),
                "command": " ".join(sys.argv),
            },
            indent=2,
        )
    )
    print(
        "| loss | iterations | skeleton PSNR dB | gain over cubic dB | train s |\n"
        "|---|---:|---:|---:|---:|"
    )
    for r in rows:
        print(
            f"| {r['loss']} | {r['iterations']} | {r['psnr']:.2f} | {r['gain_over_cubic']:+.2f} "
            f"| {r['train_seconds']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
