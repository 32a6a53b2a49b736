"""The refiner's time modulation folded into its convolutions at inference, on and off.

In this process, the shipped x4 model's refiner at its call shape of the t2 x4 restore
(2 x 3 x 256 x 256, one timestep for the batch), default backend (channels_last): forward time
with :meth:`skelem.models.unet.ConvBlock._folded_conv1` as shipped (on) and forced to return
None (off, the modulation as a separate ``addcmul``), interleaved (repetition k of both before
repetition k+1), medians and fastest repetitions, at 1 and 2 threads; the largest difference
between the two outputs.

Usage::

    .venv/bin/python benchmarks/probes/modulation_fold.py [--reps 15] [-o bench-out/fold]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import torch

from skelem.inference.backends import prepare_network
from skelem.models import unet
from skelem.models.artifact import load_artifact
from skelem.models.pretrained import pretrained_model_dir


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("-o", "--output", default="bench-out/fold")
    args = ap.parse_args()
    refiner = load_artifact(pretrained_model_dir(4)).load_network("refiner", "cpu").eval()
    net = prepare_network(refiner, "torch")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, net.in_channels, 256, 256, generator=gen)
    t = torch.full((2,), 200, dtype=torch.long)
    shipped = unet.ConvBlock._folded_conv1

    def run(fold: bool) -> torch.Tensor:
        unet.ConvBlock._folded_conv1 = shipped if fold else (lambda self, emb: None)
        try:
            return net(x, t)
        finally:
            unet.ConvBlock._folded_conv1 = shipped

    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times: dict[bool, list[float]] = {True: [], False: []}
        with torch.no_grad():
            diff = float((run(True) - run(False)).abs().max())
            for _ in range(args.reps):
                for fold in (False, True):
                    start = time.perf_counter()
                    run(fold)
                    times[fold].append(time.perf_counter() - start)
        off, on = statistics.median(times[False]), statistics.median(times[True])
        row = {
            "threads": threads,
            "off_s_median": round(off, 4),
            "on_s_median": round(on, 4),
            "speedup_median": round(off / on, 3),
            "speedup_fastest": round(min(times[False]) / min(times[True]), 3),
            "max_abs_diff": diff,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "rows": rows,
        "reps": args.reps,
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (out / "modulation_fold.json").write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
