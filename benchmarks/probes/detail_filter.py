"""Which part of SkelEM's sampled detail costs fidelity and which buys perception?

SkelEM's output at ``--detail d`` is (per pass, then fused) ``D0 + d * (S1 - D0)``, ``D0`` the
deterministic output (``--detail 0``) and ``S1`` the output at ``--detail 1``: the departure
``S1 - D0`` is the sampled detail. This probe restores ``D0`` and ``S1`` once (zero-shot, the
shipped pretrained model, tuning data only: ``fibsem_medulla_t2`` Y 0-124, the crop protocol of
``crop_protocol.py``) and scores ``D0 + d * F(S1 - D0)`` for filters ``F`` of the departure:

- ``none``: the knob as shipped (checked against a real ``--detail 0.7`` restore);
- ``gapbump``: per column, the departure's projection on the lowest mode between two measured
  rows (the half-sine bump over the gap) removed;
- ``gapmean``: the departure's mean over each gap's interior rows removed;
- ``gapsine<K>``: its ``K`` slowest sine modes between two measured rows removed (orthogonal);
- ``latHP<s>``: the departure minus its lateral (Y, X) Gaussian blur of sigma ``s`` px;
- ``zHP<s>``: the departure minus its Z Gaussian blur of sigma ``s`` voxels;
- ``phasematch[R]`` (and ``gapsine<K>+phasematch[R]``): the departure scaled per phase
  (``z mod s``) by the gain that gives the restored slices of that phase ``R`` (default 1) times
  the lateral gradient energy of the measured slices of the same restoration (no ground truth: a
  restore could compute it), then ``d`` scales it as the others; at ``d = 1`` the Z texture
  stationarity is about ``1 / R`` by construction (``R`` 0.8: 1.25, the least detail per phase
  that meets issue 12's target 4).

Usage: ``OMP_NUM_THREADS=2 .venv/bin/python benchmarks/probes/detail_filter.py --factors 4 8
-o bench-out/detail_filter``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from crop_protocol import HALVES, t2_case  # noqa: E402


def gap_projection(dep: np.ndarray, factor: int, basis: np.ndarray) -> np.ndarray:
    """``dep`` minus its projection, gap by gap along Z, on the unit vector ``basis`` (f-1,)."""
    out = dep.copy()
    for z0 in range(0, dep.shape[0] - factor, factor):
        seg = dep[z0 + 1 : z0 + factor]  # (f-1, Y, X), interior rows of one gap
        coef = np.tensordot(basis, seg, axes=(0, 0))
        out[z0 + 1 : z0 + factor] = seg - basis[:, None, None] * coef[None]
    return out


def _xgrad(v: np.ndarray) -> np.ndarray:
    return np.diff(v, axis=2)


def phase_matched(d0: np.ndarray, dep: np.ndarray, factor: int, share: float = 1.0) -> np.ndarray:
    """``dep`` scaled per phase so that ``d0 + dep`` has, at every phase, ``share`` times the
    mean lateral gradient energy of its measured slices (phase 0, where ``dep`` is 0): with
    ``share`` 0.8 the Z texture stationarity is at most 1.25 with the least detail per phase."""
    g0, gd = _xgrad(d0), _xgrad(dep)
    target = share * float(np.mean(g0[::factor] ** 2))
    out = dep.copy()
    for phase in range(1, factor):
        a = float(np.mean(g0[phase::factor] ** 2))
        b = float(np.mean(g0[phase::factor] * gd[phase::factor]))
        c = float(np.mean(gd[phase::factor] ** 2))
        disc = b * b - c * (a - target)
        gain = (-b + np.sqrt(disc)) / c if c > 0 and disc >= 0 else 1.0
        out[phase::factor] *= max(0.0, gain)
    return out


def filtered(dep: np.ndarray, name: str, factor: int, d0: np.ndarray | None = None) -> np.ndarray:
    if "phasematch" in name:  # [FILTER+]phasematch[SHARE]
        head, _, share = name.partition("phasematch")
        inner = filtered(dep, head[:-1], factor) if head else dep
        return phase_matched(d0, inner, factor, float(share or 1.0))
    if name == "none":
        return dep
    if name == "gapbump":
        b = np.sin(np.pi * np.arange(1, factor) / factor)
        return gap_projection(dep, factor, b / np.linalg.norm(b))
    if name.startswith("gapsine"):  # the K slowest sine modes of every gap removed
        out = dep
        for m in range(1, int(name[7:]) + 1):
            b = np.sin(np.pi * m * np.arange(1, factor) / factor)
            out = gap_projection(out, factor, b / np.linalg.norm(b))
        return out
    if name == "gapmean":
        b = np.ones(factor - 1)
        return gap_projection(dep, factor, b / np.linalg.norm(b))
    if name.startswith("latHP"):
        s = float(name[5:])
        return dep - ndimage.gaussian_filter(dep, (0, s, s), mode="reflect")
    if name.startswith("zHP"):
        s = float(name[3:])
        return dep - ndimage.gaussian_filter(dep, (s, 0, 0), mode="reflect")
    raise ValueError(name)


def _rounded(row: dict) -> dict:
    return {k: round(v, 3 if k == "stationarity" else 4) for k, v in row.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--factors", type=int, nargs="+", default=[4, 8])
    ap.add_argument("-o", "--output", default="bench-out/detail_filter")
    ap.add_argument(
        "--filters", nargs="+", default=["none", "gapbump", "gapmean", "latHP1", "latHP2", "zHP1"]
    )
    ap.add_argument("--details", type=float, nargs="+", default=[0.5, 0.7, 1.0, 1.4])
    ap.add_argument("--model", help="model folder (default: the shipped pretrained one)")
    ap.add_argument(
        "--half",
        choices=sorted(HALVES),
        default="tuning",
        help="t2's Y half to restore (score the scored half only once a setting is chosen)",
    )
    args = ap.parse_args()
    from skelem.inference.restore import RestoreOptions, restore_volume
    from skelem.models.artifact import load_artifact
    from skelem.models.pretrained import pretrained_model_dir

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for factor in args.factors:
        case = t2_case(args.half, factor)
        art = load_artifact(args.model or pretrained_model_dir(factor))
        preds = {}
        for d in (0.0, 1.0, 0.7):
            cache = out / f"x{factor}_d{d:g}.npy"
            if not cache.exists():
                p = restore_volume(
                    case.eval_in,
                    art,
                    factor,
                    RestoreOptions(method="skelem", detail=d),
                    input_units=True,
                )
                np.save(cache, np.asarray(p, dtype=np.float32))
            preds[d] = np.load(cache)
        d0, s1 = preds[0.0], preds[1.0]
        dep = s1 - d0
        offline = d0 + 0.7 * dep
        rows = {
            "check_max_abs_offline_vs_restored_0.7": float(np.abs(offline - preds[0.7]).max()),
            "skelem-detail-0": _rounded(case.scores(d0)),
        }
        print(f"x{factor}", json.dumps(rows), flush=True)
        for name in args.filters:
            fdep = filtered(dep, name, factor, d0)
            rows[f"{name}/energy_kept"] = round(float((fdep**2).mean() / (dep**2).mean()), 3)
            for d in args.details:
                r = _rounded(case.scores(d0 + d * fdep))
                rows[f"{name}/{d:g}"] = r
                print(
                    f"x{factor} {name} d={d:g}: " + " ".join(f"{k} {v}" for k, v in r.items()),
                    flush=True,
                )
        results[f"x{factor}"] = rows
        (out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
