"""``remove_slow_modes`` as shipped vs gap by gap (its definition, the code before dd42dc6).

In this process, one thread: a batch of 2 axial slices of 249 x 250 (the t2 x4 restore's shape)
with every ``--factor``-th row measured, ``--modes`` modes removed; both versions interleaved
``--reps`` times, medians; the two outputs compared bit for bit.

Usage::

    .venv/bin/python benchmarks/probes/slow_modes_speed.py [--factor 8] [--modes 2] [--reps 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from skelem.diffusion.prior import remove_slow_modes


def gap_by_gap(x: torch.Tensor, mask: torch.Tensor, modes: int) -> torch.Tensor:
    """The projection one gap and one row at a time (the definition)."""
    rows = torch.nonzero(mask).flatten().tolist()
    out = x.clone()
    for a, b in zip(rows[:-1], rows[1:], strict=True):
        span = b - a
        j = torch.arange(1, span, dtype=torch.float64)
        for m in range(1, min(modes, span - 1) + 1):
            basis = ((2.0 / span) ** 0.5 * torch.sin(torch.pi * m * j / span)).tolist()
            coef = sum(w * x[..., a + i, :] for i, w in enumerate(basis, start=1))
            for i, w in enumerate(basis, start=1):
                out[..., a + i, :] -= w * coef
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--modes", type=int, default=2)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    x = torch.randn(2, 1, 249, 250, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(249, dtype=torch.bool)
    mask[:: args.factor] = True
    same = torch.equal(gap_by_gap(x, mask, args.modes), remove_slow_modes(x, mask, args.modes))
    times: dict[str, list[float]] = {"gap by gap": [], "shipped": []}
    for _ in range(args.reps):
        for name, fn in (("gap by gap", gap_by_gap), ("shipped", remove_slow_modes)):
            start = time.perf_counter()
            fn(x, mask, args.modes)
            times[name].append(time.perf_counter() - start)
    old, new = statistics.median(times["gap by gap"]), statistics.median(times["shipped"])
    print(
        f"x{args.factor}, {args.modes} modes: gap by gap {old * 1e3:.2f} ms, shipped "
        f"{new * 1e3:.2f} ms ({old / new:.1f}x); bit-identical: {same}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
