"""Where does a SkelEM output's XY stripe excess come from? Row bands in the sampled detail.

The 2026-12-08 benchmark tables show an XY stripe excess of 1.17 for SkelEM trained on the input
at x4 (1.00 for its skeleton and for its ablation without the alignment stage, 0.97 for the
pretrained model). This probe restores the scored crop with the XZ pass only (``--planes xz``)
at ``--detail 1`` and ``--detail 0``, takes the sampled detail ``S1 - D0`` on the rows between
measured slices, and reports the share of its energy in its means along X (per (z, y) row of an
XZ slice: a band constant along the row) and along Y (across the XZ slices). Detail without
bands puts about ``1 / n`` of its energy in such means (``n`` the crop's width after the
border); a band along every row puts much more.

Models: a model trained on the crop's own anisotropic input (``--model``, e.g. the benchmark's
``bench-out/fibsem_v10_x4/models/fibsem_t2_yhalf_x4``) with and without its alignment stage,
and the shipped pretrained model (``--normalize input``).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probes/detail_streaks.py --factor 4 \
        --model bench-out/fibsem_v10_x4/models/fibsem_t2_yhalf_x4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from crop_protocol import T2_RAW, t2_case  # noqa: E402

BORDER = 8


def band_shares(detail: np.ndarray) -> dict:
    """Energy shares of ``detail`` ``(rows, Y, X)`` in its means along X and along Y."""
    d = detail.astype(np.float64)
    energy = float(np.mean(d**2))
    return {
        "detail_rms": float(np.sqrt(energy)),
        "share_mean_along_x": float(np.mean(d.mean(axis=2) ** 2) / energy),
        "share_mean_along_y": float(np.mean(d.mean(axis=1) ** 2) / energy),
        "one_over_width": 1.0 / d.shape[2],
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--half", choices=("tuning", "scored"), default="scored")
    ap.add_argument("--model", required=True, help="a model trained on the half's own input")
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    if not T2_RAW.exists():
        print(f"real data not found at {T2_RAW}", file=sys.stderr)
        return 2
    from skelem.evaluation.benchmark import pretrained_artifact
    from skelem.inference.restore import RestoreOptions, restore_volume
    from skelem.metrics.measured import between_rows
    from skelem.models.artifact import load_artifact

    f = args.factor
    case = t2_case(args.half, f)
    rows = between_rows(case.eval_gt.shape[0], f, 0)
    settings = [
        ("trained on the input", load_artifact(args.model), "model", True),
        ("trained on the input, without alignment", load_artifact(args.model), "model", False),
        ("pretrained (zero-shot)", pretrained_artifact(f), "input", True),
    ]
    result = {"command": " ".join(sys.argv), "rows": {}}
    for name, artifact, normalize, aligned in settings:
        if artifact is None:
            continue
        out = {}
        for detail in (0.0, 1.0):
            opts = RestoreOptions(
                method="skelem", planes="xz", detail=detail, normalize=normalize, aligned=aligned
            )
            out[detail] = restore_volume(case.eval_in, artifact, f, opts, input_units=True)
        detail = (out[1.0] - out[0.0])[rows][:, BORDER:-BORDER, BORDER:-BORDER]
        row = band_shares(detail)
        result["rows"][name] = row
        print(
            f"x{f} {args.half} {name}: detail RMS {row['detail_rms']:.2f}, energy in means "
            f"along X {row['share_mean_along_x']:.4f}, along Y {row['share_mean_along_y']:.4f} "
            f"(1/width {row['one_over_width']:.4f})",
            flush=True,
        )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
