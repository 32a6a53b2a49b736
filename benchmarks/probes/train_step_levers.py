"""Training-step speed levers, each alone, interleaved (issue 13, item 3).

Times the skeleton and refiner training steps of the default configuration (batch 8 of 128^2,
16 channels, depth 3) on the t2 x4 volume in fresh processes, one per variant and repetition:

- ``base``: the step as ``train_stage`` runs it (NCHW, the process's default threads, glibc's
  default allocator settings);
- ``channels_last``: the network (weights and activations) in channels_last layout, and the
  refiner stage's frozen skeleton too (as ``pipeline`` loads it, ``cpu_fast_layout``);
- ``malloc``: glibc told to keep freed memory (``mallopt`` of a fixed 1 GiB trim threshold and a
  32 MiB mmap threshold), so the step's large activation buffers are reused instead of being
  returned to the kernel and faulted in again every step;
- ``threads1``: one thread instead of the default;
- ``catdecoders``: the decoders' plain graph, ``conv(cat(up(h), skip))``, as before the
  transposed-convolution decoders (``UNet2D._decode``; so ``base+catdecoders`` is 563f5f7's step
  and ``channels_last+malloc+catdecoders`` the default of 2026-12-07 before them);
- ``fusedadam``: AdamW's fused kernel (``fused=True``) instead of its per-parameter loop;
- ``convssim``: the skeleton loss's SSIM as five 7x7 Gaussian convolutions, as before it became
  banded matrix products (``losses.ssim_gaussian7``; the refiner's loss has no SSIM);
- ``compile``: the network wrapped in ``torch.compile`` (inductor, forward and backward); the
  first step's seconds (the compilation) are reported apart as ``first_step_s``;
- the share of the step spent drawing the batch (pair sampling and interpolation);
- a training roofline: every run counts one step's FLOPs (forward and backward, with
  ``torch.utils.flop_counter.FlopCounterMode``) and times the machine's float32 matrix product
  (``benchmarks/roofline.py``'s ``matrix_rate``, 2048^3, best of 5) at the run's thread count
  right after its steps, so each step's achieved GFLOP/s is set against the same minute's
  matrix rate.

Usage::

    .venv/bin/python benchmarks/probes/train_step_levers.py --reps 3 --steps 12 \
        [--variants base channels_last malloc channels_last+malloc] [--stages skeleton refiner]

Prints one line per run and a median table; ``--json`` writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t2" / "raw.tif"


def _ssim_by_convolution(x, y, data_range: float = 1.0):
    """The skeleton loss's SSIM before it used banded matrix products: five valid 7x7 Gaussian
    convolutions (sigma 1.5) of a float32 window."""
    import torch
    import torch.nn.functional as F

    coords = torch.arange(7, dtype=torch.float32) - 3
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :])[None, None].to(x.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    sxx = F.conv2d(x * x, window) - mu_x**2
    syy = F.conv2d(y * y, window) - mu_y**2
    sxy = F.conv2d(x * y, window) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).mean()


def child(stage: str, variant: str, steps: int, warmup: int) -> dict:
    import numpy as np
    import tifffile
    import torch

    flags = set(variant.split("+"))
    if "malloc" in flags:
        from skelem.memory import set_malloc_reuse

        set_malloc_reuse()
    if "threads1" in flags:
        torch.set_num_threads(1)
    if "convssim" in flags:
        from skelem.training import losses

        losses.ssim_gaussian7 = _ssim_by_convolution
    if "catdecoders" in flags:
        from skelem.models import unet

        unet.UNet2D._decode = lambda self, block, h, skip, emb: block(
            torch.cat([self._up(h), skip], dim=1), emb
        )

    from skelem.config.models import ExperimentConfig
    from skelem.data.normalize import PercentileNormalizer
    from skelem.models.factory import build_refiner, build_skeleton
    from skelem.training import stages as st
    from skelem.training.loop import EMA, _lr_at
    from skelem.training.pipeline import _pair_sampler

    cfg = ExperimentConfig.model_validate({"degradation": {"factor": 4}, "device": "cpu"})
    data = tifffile.imread(DATA)[::4]
    normalizer = PercentileNormalizer.fit(data)
    tc = cfg.skeleton_training if stage == "skeleton" else cfg.refiner_training
    sampler = _pair_sampler(data, cfg, normalizer, tc.patch_size, tc.seed)
    device = torch.device("cpu")
    torch.manual_seed(0)
    if stage == "skeleton":
        model = build_skeleton(cfg.skeleton)
        step_loss = st.skeleton_step(sampler, cfg, device)
    else:
        skeleton = build_skeleton(cfg.skeleton).eval()
        model = build_refiner(cfg.refiner)
        step_loss = st.refiner_step(sampler, skeleton, cfg, device)
    if "channels_last" in flags:
        model = model.to(memory_format=torch.channels_last)
        if stage == "refiner":  # the frozen skeleton too, as the pipeline loads it
            skeleton = skeleton.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    train_model = torch.compile(model) if "compile" in flags else model
    fused = {"fused": True} if "fusedadam" in flags else {}
    opt = torch.optim.AdamW(params, lr=tc.learning_rate, weight_decay=1e-4, **fused)
    ema = EMA(model, tc.ema_decay)
    model.train()
    times, sample_times = [], []
    first_step_s = None
    rng_t = 0.0
    orig_sample = sampler.sample

    def timed_sample(*a, **k):
        nonlocal rng_t
        t = time.perf_counter()
        out = orig_sample(*a, **k)
        rng_t += time.perf_counter() - t
        return out

    sampler.sample = timed_sample
    for step in range(warmup + steps):
        rng_t = 0.0
        t = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, tc)
        loss = step_loss(train_model, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(model, step)
        if step == 0:
            first_step_s = time.perf_counter() - t
        if step >= warmup:
            times.append(time.perf_counter() - t)
            sample_times.append(rng_t)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step_loss(model, warmup + steps).backward()
    opt.zero_grad(set_to_none=True)
    step_flops = counter.get_total_flops()
    sys.path.insert(0, str(REPO / "benchmarks"))
    from roofline import matrix_rate

    mm_gflops = matrix_rate(torch.get_num_threads())
    with open("/proc/self/status") as f:
        hwm = [ln for ln in f if ln.startswith("VmHWM")][0].split()[1]
    minflt = __import__("resource").getrusage(0).ru_minflt
    return {
        "stage": stage,
        "variant": variant,
        "s_per_step": statistics.median(times),
        "first_step_s": first_step_s,
        "step_gflop": step_flops / 1e9,
        "step_gflops": step_flops / 1e9 / statistics.median(times),
        "mm_gflops": mm_gflops,
        "sample_share": sum(sample_times) / sum(times),
        "peak_mib": int(hwm) / 1024,
        "minor_faults": minflt,
        "threads": torch.get_num_threads(),
        "loss": float(loss.detach()),
        "np": np.__version__,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--stages", nargs="+", default=["skeleton", "refiner"])
    p.add_argument(
        "--variants", nargs="+", default=["base", "channels_last", "malloc", "channels_last+malloc"]
    )
    p.add_argument("--json", type=Path)
    p.add_argument("--child", nargs=2, metavar=("STAGE", "VARIANT"))
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.steps, args.warmup)))
        return 0
    rows: dict[tuple[str, str], list[dict]] = {}
    for rep in range(args.reps):
        for stage in args.stages:
            for variant in args.variants:
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    stage,
                    variant,
                    "--steps",
                    str(args.steps),
                    "--warmup",
                    str(args.warmup),
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
                if proc.returncode:
                    print(proc.stderr[-2000:])
                    return 1
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.setdefault((stage, variant), []).append(row)
                print(rep, json.dumps(row), flush=True)
    table = []
    for stage in args.stages:
        base = None
        for variant in args.variants:
            runs = rows[(stage, variant)]
            s = statistics.median(r["s_per_step"] for r in runs)
            base = base or s
            table.append(
                {
                    "stage": stage,
                    "variant": variant,
                    "runs": len(runs),
                    "s_per_step": round(s, 4),
                    "it_per_s": round(1 / s, 3),
                    "speedup": round(base / s, 2),
                    "sample_share": round(statistics.median(r["sample_share"] for r in runs), 3),
                    "step_gflop": round(runs[0]["step_gflop"], 2),
                    "gflops": round(statistics.median(r["step_gflops"] for r in runs), 1),
                    "mm_gflops": round(statistics.median(r["mm_gflops"] for r in runs), 1),
                    "pct_of_mm": round(
                        100 * statistics.median(r["step_gflops"] / r["mm_gflops"] for r in runs)
                    ),
                    "peak_mib": round(max(r["peak_mib"] for r in runs)),
                    "minor_faults": int(statistics.median(r["minor_faults"] for r in runs)),
                }
            )
            print(table[-1], flush=True)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": table,
                    "argv": sys.argv,
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
