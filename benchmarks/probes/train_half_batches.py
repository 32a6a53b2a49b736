"""Does a training step gain from two half-batches side by side, one thread each? (issue 13)

A restore runs its XZ and YZ passes side by side on one thread each (1.1x over one pass after
the other on two threads: a 16-channel network keeps one core busy better than two). This probe
asks the same of a skeleton training step (the default configuration: batch 8 of 64^2, context-2
skeleton, channels_last, the CLI's allocator settings) on the t2 x4 volume: the step as
``train_stage`` runs it on 2 threads, against the batch split in two halves whose forward and
backward passes run in two Python threads on one torch thread each, the gradients computed with
``torch.autograd.grad`` and summed in a fixed order (so the result would not depend on which
half finished first), then the same clipping and AdamW step. Interleaved within one process,
medians of the repetitions; the two variants' gradients are compared on the first batch.

Usage: ``.venv/bin/python benchmarks/probes/train_half_batches.py --reps 5 --steps 10``
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t2" / "raw.tif"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    from skelem.memory import set_malloc_reuse

    set_malloc_reuse()
    import tifffile
    import torch

    from skelem.config.models import ExperimentConfig
    from skelem.data.normalize import PercentileNormalizer
    from skelem.models.context import input_channels, repeat_channels
    from skelem.models.device import torch_threads
    from skelem.models.factory import build_skeleton
    from skelem.training.losses import SKELETON_LOSSES
    from skelem.training.pipeline import _pair_sampler
    from skelem.training.stages import _batch

    cfg = ExperimentConfig.model_validate(
        {"degradation": {"factor": 4}, "device": "cpu", "skeleton": {"context": 2}}
    )
    data = tifffile.imread(DATA)[::4]
    tc = cfg.skeleton_training
    sampler = _pair_sampler(data, cfg, PercentileNormalizer.fit(data), tc.patch_size, tc.seed)
    loss_fn = SKELETON_LOSSES[cfg.skeleton_loss]
    torch.manual_seed(0)
    model = build_skeleton(cfg.skeleton).to(memory_format=torch.channels_last).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tc.learning_rate, weight_decay=1e-4)
    cpu = torch.device("cpu")
    channels = input_channels(model)
    pool = ThreadPoolExecutor(1, "half")

    def batch(step):
        u, p = _batch(sampler, tc.batch_size, (tc.seed, step), cpu)
        return repeat_channels(u, channels), p

    def whole(step):
        u, p = batch(step)
        opt.zero_grad(set_to_none=True)
        loss_fn(model(u), p).backward()
        return [p_.grad for p_ in params]

    def halves(step):
        u, p = batch(step)
        k = u.shape[0] // 2

        def half(sl):  # the loss of a half is a mean: scale so the halves sum to the whole's
            return torch.autograd.grad(loss_fn(model(u[sl]), p[sl]) * 0.5, params)

        with torch_threads(1):
            later = pool.submit(half, slice(k, None))
            first = half(slice(0, k))
            second = later.result()
        grads = [a + b for a, b in zip(first, second, strict=True)]
        for p_, g in zip(params, grads, strict=True):
            p_.grad = g
        return grads

    def step_with(fn, step):
        fn(step)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    g_whole = [g.clone() for g in whole(0)]
    g_half = halves(0)
    diff = max(float((a - b).abs().max()) for a, b in zip(g_whole, g_half, strict=True))
    scale = max(float(a.abs().max()) for a in g_whole)
    print(f"gradient max abs difference {diff:.2e} (largest gradient {scale:.2e})")
    for s in range(3):
        step_with(whole, s)
        step_with(halves, s)
    times = {"whole batch, 2 threads": [], "two halves side by side, 1 thread each": []}
    for rep in range(args.reps):
        for name, fn in zip(times, (whole, halves), strict=True):
            t = time.perf_counter()
            for s in range(args.steps):
                step_with(fn, 100 * rep + s)
            times[name].append((time.perf_counter() - t) / args.steps)
    base = statistics.median(times["whole batch, 2 threads"])
    for name, runs in times.items():
        med = statistics.median(runs)
        print(f"{name}: {med * 1000:.1f} ms per step (median of {len(runs)}), {base / med:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
