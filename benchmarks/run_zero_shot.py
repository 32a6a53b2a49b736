"""Zero-shot across modalities: restore a light-microscopy-like volume with a model trained on EM.

Data: an LM-like phantom (``skelem.data.phantoms.lm_phantom``: fluorescent nuclei and puncta,
isotropic Gaussian PSF sigma 1 voxel, Poisson noise), isotropic 97 x 128 x 128, seed 0. Anisotropy
x4 is simulated (every 4th slice, profile none); the isotropic phantom is the ground truth.
Compared, side by side: cubic; the EM model (trained on real FIB-SEM by ``run_fibsem.py``) applied
without retraining, intensities normalised by the LM volume's own percentiles; and a model trained
on the LM input itself with the same budget as the EM one.

Usage (after ``run_fibsem.py``)::

    .venv/bin/python benchmarks/run_zero_shot.py \
--em-model bench-out/fibsem/models/fibsem_t2_yhalf_x4 \
        -o bench-out/zero_shot
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from skelem.cli.progress import TqdmProgress
from skelem.data.phantoms import lm_phantom
from skelem.evaluation.benchmark import Budget, machine_description, simulate_acquisition
from skelem.evaluation.report import method_table
from skelem.inference.restore import RestoreOptions, restore_volume
from skelem.io import Volume
from skelem.metrics import evaluate_arrays
from skelem.models.artifact import load_artifact
from skelem.training.pipeline import train_model


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--em-model", required=True, help="model directory trained on EM at factor 4"
    )
    parser.add_argument("-o", "--output", default="bench-out/zero_shot")
    parser.add_argument(
        "--iterations", type=int, help="LM model budget (default: the EM benchmark's)"
    )
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    em = load_artifact(args.em_model)
    factor = em.factor
    image, _ = lm_phantom((97, 128, 128), seed=0, psf_sigma=(1.0, 1.0, 1.0))
    iso = np.clip(np.round(image * 4095), 0, 4095).astype(np.uint16)  # a 12-bit camera
    acquired, gt = simulate_acquisition(iso, factor)
    vol = Volume(acquired, (0.1 * factor, 0.1, 0.1), "micrometer", f"LM phantom x{factor}")
    budget = Budget()
    if args.iterations:
        budget.skeleton_iterations = budget.refiner_iterations = args.iterations
        budget.alignment_iterations = max(10, args.iterations // 10)
    cfg = budget.config(factor)
    t0 = time.perf_counter()
    with TqdmProgress() as progress:
        lm = train_model(vol, out / "lm_model", cfg, ["skeleton", "refiner", "alignment"], progress)
    train_seconds = time.perf_counter() - t0
    runs = {
        "cubic": (None, "cubic"),
        "EM skeleton (zero-shot)": (em, "skeleton"),
        "EM skelem (zero-shot)": (em, "skelem"),
        "LM skeleton (trained on LM)": (lm, "skeleton"),
        "LM skelem (trained on LM)": (lm, "skelem"),
    }
    rows = {}
    for name, (artifact, method) in runs.items():
        options = RestoreOptions(method=method, normalize="input")
        t = time.perf_counter()
        pred = restore_volume(vol, artifact, factor, options, input_units=True)
        seconds = time.perf_counter() - t
        scores = evaluate_arrays(
            pred,
            gt.astype(np.float32),
            data_range=4095.0,
            border=8,
            factor=factor,
            acquired=acquired.astype(np.float32),
        )
        rows[name] = {
            "group": "zero-shot"
            if name.startswith("EM")
            else "baseline"
            if method == "cubic"
            else "trained",
            **scores,
            "seconds": seconds,
        }
        print(f"{name}: PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}", flush=True)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine_description(),
        "em_model": args.em_model,
        "lm_training_seconds": train_seconds,
        "command": " ".join(sys.argv),
        "data": "lm_phantom((97,128,128), seed=0, psf_sigma=(1,1,1)) as 12-bit; x4 every 4th "
        "slice; GT = isotropic phantom",
    }
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "methods": rows}, indent=2, default=float)
    )
    (out / "report.md").write_text(
        f"# Zero-shot across modalities\n\n{meta['data']}\n\n{method_table(rows)}\n"
    )
    print(method_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
