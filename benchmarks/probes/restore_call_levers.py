"""Issue 13: levers on one network call of a restore, each alone, interleaved in one process.

The pretrained x4 skeleton at the t2 x4 restore's call shape (2 x 1 x 256 x 256, channels_last):
- ``out-of-place`` vs ``in-place``: the activations as modules (``act(h)``, before 2026-12-07)
  or overwriting the convolution's output (:func:`skelem.models.unet._activate`, now);
- ``up+skip buffer``: the decoder's input built by writing the upsampled tensor and the skip
  into one buffer instead of ``torch.cat`` (not adopted);
- ``jit freeze``: ``torch.jit.freeze`` + ``optimize_for_inference`` of a trace (not adopted);
and, per pair of calls, two calls one after the other on 2 threads against two calls side by
side on 1 thread each (what :func:`skelem.inference.methods._both_passes` does with a block's XZ
and YZ passes). Medians over ``--reps`` interleaved repetitions; outputs compared with the
in-place network's.

Usage: ``.venv/bin/python benchmarks/probes/restore_call_levers.py [--reps 41]``
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import types
from concurrent.futures import ThreadPoolExecutor

import torch

import skelem.models.unet as unet
from skelem.inference.networks import load_networks
from skelem.models.artifact import load_artifact
from skelem.models.pretrained import pretrained_model_dir


def _up_skip_forward(self, x, t=None):
    """UNet2D.forward (no time embedding) with the decoder input written into one buffer."""

    def up_skip(h, skip):
        b, c, h2, w2 = h.shape
        buf = torch.empty(b, c + skip.shape[1], 2 * h2, 2 * w2, memory_format=torch.channels_last)
        up = buf[:, :c].unflatten(2, (h2, 2)).unflatten(4, (w2, 2))
        up.copy_(h[:, :, :, None, :, None].expand(b, c, h2, 2, w2, 2))
        buf[:, c:].copy_(skip)
        return buf

    h, skips = x, []
    for block in self.encoders:
        h = block(h)
        skips.append(h)
        h = self._down(h)
    h = self.bottleneck(h)
    for block, skip in zip(self.decoders, reversed(skips), strict=True):
        h = block(up_skip(h, skip))
    out = self.head(h)
    return x[:, :1] + out if self.residual_input else out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=41)
    args = ap.parse_args()
    artifact = load_artifact(pretrained_model_dir(4))
    net = load_networks(artifact, ["skeleton"], torch.device("cpu"))["skeleton"]
    net = getattr(net, "source", net).eval().to(memory_format=torch.channels_last)
    x = torch.randn(2, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    in_place = unet._activate

    def out_of_place(act, h):
        return act(h)

    fused = copy.deepcopy(net)
    fused.forward = types.MethodType(_up_skip_forward, fused)
    torch.set_num_threads(2)
    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x)))
    pool = ThreadPoolExecutor(2)

    def call(model, activate=in_place):
        unet._activate = activate
        try:
            return model(x)
        finally:
            unet._activate = in_place

    def one_after_other():
        torch.set_num_threads(2)
        for _ in range(2):
            call(net)

    def side_by_side():
        torch.set_num_threads(1)
        list(pool.map(lambda _: call(net), range(2)))
        torch.set_num_threads(2)

    single = {
        "out-of-place (before)": lambda: call(net, out_of_place),
        "in-place (now)": lambda: call(net),
        "up+skip buffer": lambda: call(fused),
        "jit freeze": lambda: frozen(x),
    }
    pairs = {
        "2 calls one after the other, 2 threads": one_after_other,
        "2 calls side by side, 1 thread each": side_by_side,
    }
    with torch.inference_mode():
        torch.set_num_threads(2)
        ref = call(net)
        for name, fn in single.items():
            diff = (fn().contiguous() - ref.contiguous()).abs().max().item()
            print(f"{name}: max abs difference to in-place {diff:.1e}")
        seconds = {name: [] for name in [*single, *pairs]}
        for _ in range(args.reps):
            for name, fn in [*single.items(), *pairs.items()]:
                torch.set_num_threads(2)
                start = time.perf_counter()
                fn()
                seconds[name].append(time.perf_counter() - start)
    base = statistics.median(seconds["out-of-place (before)"])
    pair_base = statistics.median(seconds["2 calls one after the other, 2 threads"])
    for name, values in seconds.items():
        median = statistics.median(values)
        ref_s = pair_base if name in pairs else base
        print(f"{name}: median {median:.4f} s, speed-up {ref_s / median:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
