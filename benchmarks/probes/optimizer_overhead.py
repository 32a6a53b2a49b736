"""Probe: how much of a skeleton training step is the optimiser, gradient clipping and the EMA?

The 16-channel, depth-3 skeleton at its training shape (batch 8 of 64^2, channels_last, 1 thread):
forward, backward, and AdamW + clip + EMA timed apart over 50 steps (after 10 warm-up steps), with
the optimiser per parameter (``foreach=False``), ``foreach=True`` and ``fused=True``, each twice.

Usage: ``.venv/bin/python benchmarks/probes/optimizer_overhead.py``
"""

import copy
import time

import torch

from skelem.models.unet import UNet2D

torch.set_num_threads(1)


def run(foreach, fused, n=60):
    torch.manual_seed(0)
    m = UNet2D(1, 1, 16, 3, residual_input=True).to(memory_format=torch.channels_last)
    ema = copy.deepcopy(m)
    params = list(m.parameters())
    eparams = list(ema.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4, foreach=foreach, fused=fused)
    x = torch.randn(8, 1, 64, 64).to(memory_format=torch.channels_last)
    tf = tb = to = 0.0
    for i in range(n):
        t0 = time.perf_counter()
        loss = (m(x) - x).pow(2).mean()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=foreach)
        opt.step()
        with torch.no_grad():
            if foreach:
                torch._foreach_lerp_(eparams, params, 0.001)
            else:
                for e, p in zip(eparams, params, strict=True):
                    e.lerp_(p, 0.001)
        t3 = time.perf_counter()
        if i >= 10:
            tf += t1 - t0
            tb += t2 - t1
            to += t3 - t2
    k = n - 10
    return tf / k * 1e3, tb / k * 1e3, to / k * 1e3, [p.clone() for p in params]


for cfg in [(False, None), (True, None), (None, True), (False, None), (True, None), (None, True)]:
    f, b, o, p = run(*cfg)
    print(cfg, f"fwd {f:.1f} ms bwd {b:.1f} ms opt+clip+ema {o:.1f} ms")
