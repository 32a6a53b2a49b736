"""Issue 12, target 4: are there slice-by-slice stripes to remove, and what would fusing the two
passes by direction buy?

A restore runs every XZ slice (one per ``y``) and every YZ slice (one per ``x``) and averages the
two passes. Errors that change from one slice to the next and stay along it would show in XY
views as stripes. The report's XY stripe index compares the error's energy on the spectrum's
axis lines with the share of bins they hold; :func:`skelem.metrics.stripe_excess` compares it
with the energy off the axes at the same radial frequencies. This probe restores a crop with the
shipped pretrained model (zero-shot, ``--normalize input``, as ``skelem restore`` without
``--model``) by each pass alone and by both, and reports for cubic, the skeleton and SkelEM (its
default):

- the stripe index and the stripe excess of each output;
- the PSNR of the average of the two passes on the rows between measured slices, and an upper
  bound for any linear fusion of the two passes by spatial frequency: the per-frequency weight
  fitted to the truth itself (in-sample, so optimistic), and a realisable local form,
  ``(A + B) / 2 + (G_x(B - A) - G_y(B - A)) / 2`` with ``G`` a Gaussian of sigma 2 or 4 px
  along one lateral axis (each pass trusted along the axis its slices contain).

Data: ``fibsem_medulla_t2``, a Y half (``--half tuning``: Y 0-124, never scored by the headline
benchmark; ``scored``: Y 125-249), x``F`` simulated, the central crop of ``crop_protocol.py``,
border 8.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probes/stripe_measures.py --factor 8 \
        --half tuning -o bench-out/stripes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from crop_protocol import T2_RAW, t2_case  # noqa: E402

BORDER = 8


def _psnr(mse: float) -> float:
    return float(10 * np.log10(255.0**2 / mse))


def fusion_rows(a: np.ndarray, b: np.ndarray, gt: np.ndarray, rows: np.ndarray) -> dict:
    """PSNR between measured rows of the passes' average, the in-sample per-frequency optimum
    and the local directional fusions (lateral border excluded)."""
    inner = (rows, slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    a64, b64, t64 = (v.astype(np.float64) for v in (a, b, gt))

    def mse(v: np.ndarray) -> float:
        return float(np.mean((v[inner] - t64[inner]) ** 2))

    out = {"average": _psnr(mse(0.5 * (a64 + b64)))}
    fa, fb, ft = (np.fft.fft2(v[inner], axes=(1, 2)) for v in (a64, b64, t64))
    d = fa - fb
    w = np.real((np.conj(d) * (ft - fb)).sum(0)) / np.maximum((np.abs(d) ** 2).sum(0), 1e-12)
    fitted = np.real(np.fft.ifft2(w * fa + (1 - w) * fb, axes=(1, 2)))
    out["per_frequency_optimum_in_sample"] = _psnr(float(np.mean((fitted - t64[inner]) ** 2)))
    diff = b64 - a64
    for sigma in (2, 4):
        gx = ndimage.gaussian_filter1d(diff, sigma, axis=2, mode="reflect")
        gy = ndimage.gaussian_filter1d(diff, sigma, axis=1, mode="reflect")
        out[f"directional_sigma{sigma}"] = _psnr(mse(0.5 * (a64 + b64) + 0.5 * (gx - gy)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--half", choices=("tuning", "scored"), default="tuning")
    ap.add_argument("-o", "--output", default="bench-out/stripes")
    args = ap.parse_args()
    if not T2_RAW.exists():
        print(f"real data not found at {T2_RAW}", file=sys.stderr)
        return 2
    from skelem.evaluation.benchmark import pretrained_artifact
    from skelem.inference.restore import RestoreOptions, restore_volume
    from skelem.metrics import stripe_excess, stripe_index
    from skelem.metrics.measured import between_rows

    f = args.factor
    case = t2_case(args.half, f)
    artifact = pretrained_artifact(f)
    if artifact is None:
        print(f"no pretrained model for x{f}", file=sys.stderr)
        return 2
    gt = case.eval_gt
    rows = between_rows(gt.shape[0], f, 0)
    crop = (slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    result: dict = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "factor": f,
        "half": args.half,
        "rows": {},
    }
    for method in ("cubic", "skeleton", "skelem"):
        passes = ("both",) if method == "cubic" else ("both", "xz", "yz")
        outputs = {}
        for planes in passes:
            opts = {"method": method, "planes": planes}
            if method != "cubic":
                opts["normalize"] = "input"
            outputs[planes] = restore_volume(
                case.eval_in,
                None if method == "cubic" else artifact,
                f,
                RestoreOptions(**opts),
                input_units=True,
            )
            row = {
                "stripe_index": stripe_index(outputs[planes][crop], gt[crop], f),
                "stripe_excess": stripe_excess(outputs[planes][crop], gt[crop], f),
            }
            result["rows"][f"{method}/{planes}"] = row
            print(
                f"x{f} {args.half} {method} {planes}: stripe index {row['stripe_index']:.2f}, "
                f"excess {row['stripe_excess']:.3f}",
                flush=True,
            )
        if method != "cubic":
            fusion = fusion_rows(outputs["xz"], outputs["yz"], gt, rows)
            result["rows"][f"{method}/fusion_psnr_between"] = fusion
            print(
                f"x{f} {args.half} {method} PSNR between measured rows: "
                + ", ".join(f"{k} {v:.3f}" for k, v in fusion.items()),
                flush=True,
            )
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"x{f}_{args.half}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
