"""Peak memory and wall time of one ``skelem restore`` across source trees, interleaved.

Each variant is a source tree (``LABEL=SRC``, a worktree's ``src``; ``git worktree add /tmp/wt
COMMIT`` makes one) with optional environment settings (``LABEL=SRC@KEY=VALUE,...``); every
repetition restores the t2 x4 acquisition (``run_speed.py``'s OME-Zarr input, made if missing)
once per method and variant in a fresh process timed by ``/usr/bin/time`` (wall, user + system
CPU, peak RSS). Repetition k of every method and variant runs before repetition k+1 of any;
medians are reported.

Usage::

    .venv/bin/python benchmarks/probes/restore_peak_ab.py --method skeleton [skelem] --reps 3 \\
        before=/tmp/wt_a/src now=src arenas8=src@MALLOC_ARENA_MAX=8 \\
        [--model DIR] [--dtype float32] [-o bench-out/peak_ab]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from run_speed import _input, _timed  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _variant(spec: str) -> tuple[str, str, dict]:
    label, _, rest = spec.partition("=")
    src, _, env = rest.partition("@")
    settings = dict(item.split("=", 1) for item in env.split(",") if item)
    return label, str((REPO / src).resolve()) if not os.path.isabs(src) else src, settings


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("variants", nargs="+", help="LABEL=SRC[@KEY=VALUE,...]")
    ap.add_argument("--method", nargs="+", default=["skeleton"], help="one or more, interleaved")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--model", help="model folder (default: the restore's own default)")
    ap.add_argument("--dtype", default=None, help="output dtype (e.g. float32)")
    ap.add_argument("-o", "--output", default="bench-out/peak_ab")
    args = ap.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    src = _input(out)
    variants = [_variant(v) for v in args.variants]
    keys = [(method, label) for method in args.method for label, _, _ in variants]
    runs: dict[tuple[str, str], list[dict]] = {key: [] for key in keys}
    for rep in range(args.reps):
        for method in args.method:
            for label, path, settings in variants:
                dst = out / "restored.ome.zarr"
                shutil.rmtree(dst, ignore_errors=True)
                cmd = [sys.executable, "-m", "skelem.cli.main", "restore", str(src), "-o", str(dst)]
                cmd += ["--method", method, "-q"]
                cmd += ["--model", args.model] if args.model else []
                cmd += ["--dtype", args.dtype] if args.dtype else []
                row = _timed(cmd, {**os.environ, "PYTHONPATH": path, **settings})
                runs[(method, label)].append(row)
                print(rep, method, label, row, flush=True)
        shutil.rmtree(out / "restored.ome.zarr", ignore_errors=True)
    rows = [
        {
            "method": method,
            "variant": label,
            "runs": len(r),
            "wall_s_median": round(statistics.median(x["wall"] for x in r), 1),
            "cpu_s_median": round(statistics.median(x["cpu"] for x in r), 1),
            "peak_mib_median": round(statistics.median(x["peak_mib"] for x in r)),
            "peak_mib_each": [round(x["peak_mib"]) for x in r],
            "wall_s_each": [round(x["wall"], 1) for x in r],
        }
        for (method, label), r in runs.items()
    ]
    for row in rows:
        print(json.dumps(row), flush=True)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "command": " ".join(sys.argv),
        "load_average_after": os.getloadavg(),
    }
    (out / f"peak_{'_'.join(args.method)}.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
