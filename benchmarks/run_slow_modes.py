"""SkelEM's sampled detail with its slowest axial modes removed (``--slow-modes``), zero-shot.

The protocol of ``run_pretrained_eval.py --zero-shot-only`` (the shipped pretrained model,
``fibsem_medulla_t2``, x``s`` simulated by keeping every s-th Z slice, the central
249 x 96 x 96 crop, border 8, data range 255, the isotropic original as ground truth), on one Y
half: ``tuning`` (Y 0-124, where the settings were chosen with ``probes/detail_filter.py``) or
``scored`` (Y 125-249, never used to choose anything). Rows: the skeleton, ``--detail 0``, the
default (``--detail 0.7``, no modes removed), and ``--slow-modes K`` (``K = factor // 4`` unless
given) at each of ``--details``.

Usage: ``OMP_NUM_THREADS=2 .venv/bin/python benchmarks/run_slow_modes.py --factor 4 --half scored
-o bench-out/slow_modes``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crop_protocol import HALVES, t2_case


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--factor", type=int, required=True)
    ap.add_argument("--half", choices=sorted(HALVES), default="scored")
    ap.add_argument("--slow-modes", type=int, help="default: factor // 4")
    ap.add_argument("--details", type=float, nargs="+", default=[0.7, 0.85, 1.0])
    ap.add_argument("-o", "--output", default="bench-out/slow_modes")
    args = ap.parse_args()
    from skelem.models.artifact import load_artifact
    from skelem.models.pretrained import pretrained_model_dir

    factor = args.factor
    modes = args.slow_modes if args.slow_modes is not None else factor // 4
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"x{factor}_{args.half}.json"
    case = t2_case(args.half, factor)
    art = load_artifact(pretrained_model_dir(factor))
    results: dict = {"half": args.half, "slow_modes": modes, "cubic_psnr": case.cubic_psnr()}
    variants = [
        ("skeleton", {"method": "skeleton"}),
        ("skelem-detail-0", {"method": "skelem", "detail": 0.0}),
        ("skelem (default)", {"method": "skelem"}),
    ]
    variants += [
        (
            f"skelem --slow-modes {modes} --detail {d:g}",
            {"method": "skelem", "detail": d, "slow_modes": modes},
        )
        for d in args.details
    ]
    for label, opts in variants:
        row = case.score(art, normalize="input", **opts)
        results[label] = row
        path.write_text(json.dumps(results, indent=2))
        print(
            f"x{factor} {args.half} {label}: " + " ".join(f"{k} {v:.3f}" for k, v in row.items()),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
