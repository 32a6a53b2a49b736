"""Re-run a trained model's alignment stage with the texture term's axial energies taken of the
slice minus its lateral blur (``alignment.axial_texture_sigma``), and score it.

At x4 the alignment stage of `skelem train` taught the refiner bands along whole rows
(``detail_streaks.py``): a band adds axial gradient energy to every column at once, which the
texture term's axial part rewards. With ``axial_texture_sigma`` > 0 a band earns nothing. This
probe copies a trained model, puts its refiner back to the weights before alignment, aligns it
again on the crop protocol's anisotropic half (``crop_protocol.py``) with each sigma (0 = the
term as before), and scores the half's central crop against the isotropic truth: PSNR, SSIM,
KID, Z-spectrum LSD, HF energy ratio, Z stationarity, the XY stripe excess, and the share of the
sampled detail's energy in bands along X (``detail_streaks.band_shares``).

Usage::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/probes/realign_axial_texture.py --factor 4 \
        --half tuning --model bench-out/dc_trained/model_x4 --sigmas 0 4 -o bench-out/realign
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from crop_protocol import T2_RAW, t2_case  # noqa: E402
from detail_streaks import BORDER, band_shares  # noqa: E402


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unaligned_copy(model: Path, dst: Path, sigma: float):
    """``model`` copied to ``dst`` with its refiner back before alignment, the alignment stage
    not yet trained and ``alignment.axial_texture_sigma`` set; returns its config."""
    from skelem.config.models import ExperimentConfig

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(model, dst)
    shutil.copyfile(dst / "refiner_unaligned.safetensors", dst / "refiner.safetensors")
    (dst / "checkpoints" / "alignment.pt").unlink(missing_ok=True)
    manifest = json.loads((dst / "skelem-model.json").read_text())
    manifest["stages"] = [s for s in manifest["stages"] if s != "alignment"]
    manifest["config"]["alignment"]["axial_texture_sigma"] = sigma
    manifest["weights_sha256"]["refiner.safetensors"] = _sha256(dst / "refiner.safetensors")
    config = ExperimentConfig.model_validate(manifest["config"])
    manifest["config"] = config.model_dump(mode="json")
    (dst / "skelem-model.json").write_text(json.dumps(manifest, indent=2))
    if (dst / "config.json").exists():
        (dst / "config.json").write_text(json.dumps(manifest["config"], indent=2))
    return config


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--half", choices=("tuning", "scored"), default="tuning")
    ap.add_argument("--model", type=Path, required=True, help="a model trained on the input")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 4.0])
    ap.add_argument("-o", "--output", type=Path, default=Path("bench-out/realign"))
    args = ap.parse_args()
    if not T2_RAW.exists():
        print(f"real data not found at {T2_RAW}", file=sys.stderr)
        return 2
    from skelem.inference.restore import RestoreOptions, restore_volume
    from skelem.metrics import stripe_excess
    from skelem.metrics.measured import between_rows
    from skelem.models.artifact import load_artifact
    from skelem.training.pipeline import train_model

    f = args.factor
    case = t2_case(args.half, f)
    rows = between_rows(case.eval_gt.shape[0], f, 0)
    crop = (slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    result = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M %Z"), "rows": {}}
    for sigma in args.sigmas:
        dst = args.output / f"x{f}_{args.half}_sigma{sigma:g}"
        config = unaligned_copy(args.model, dst, sigma)
        t = time.perf_counter()
        train_model(case.volume, dst, config, stages=("alignment",))
        seconds = time.perf_counter() - t
        artifact = load_artifact(dst)
        row = case.score(artifact, method="skelem")
        pred = restore_volume(
            case.eval_in, artifact, f, RestoreOptions(method="skelem"), input_units=True
        )
        row["stripe_excess"] = stripe_excess(pred[crop], case.eval_gt[crop], f)
        xz = {
            d: restore_volume(
                case.eval_in,
                artifact,
                f,
                RestoreOptions(method="skelem", planes="xz", detail=d),
                input_units=True,
            )
            for d in (0.0, 1.0)
        }
        bands = band_shares((xz[1.0] - xz[0.0])[rows][:, BORDER:-BORDER, BORDER:-BORDER])
        row.update({"band_share_x": bands["share_mean_along_x"], "align_s": round(seconds, 1)})
        result["rows"][f"sigma{sigma:g}"] = row
        print(
            f"x{f} {args.half} axial_texture_sigma {sigma:g}: "
            + ", ".join(f"{k} {v:.4g}" for k, v in row.items()),
            flush=True,
        )
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / f"x{f}_{args.half}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
