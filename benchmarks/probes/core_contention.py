"""How much does a second busy core slow the first? The ceiling of 1 -> 2 worker scaling here.

The same single-threaded workload runs in one process alone, then in two processes at once; the
ratio of the per-process times is what two single-threaded Dask workers can gain at best on this
machine (a shared last-level cache, memory bandwidth or a clock that drops with two busy cores
all show up here). Workloads: ``mm`` (a 1024^2 float32 matrix product, compute-bound), ``net``
(the shipped x4 skeleton's forward pass on 8 slices of 256 x 256)
and ``copy`` (streaming 256 MB copies, memory-bound).

Usage: ``.venv/bin/python benchmarks/probes/core_contention.py [--seconds 20]`` on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time


def work(kind: str, seconds: float, barrier, queue) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    if kind == "mm":
        a = torch.randn(1024, 1024)

        def step():
            return a @ a

        units = 2 * 1024**3 / 1e9  # GFLOP per step
    elif kind == "net":
        from skelem.models.artifact import load_artifact
        from skelem.models.pretrained import pretrained_model_dir

        net = load_artifact(pretrained_model_dir(4)).load_network("skeleton").eval()
        channels = next(net.parameters()).shape[1]
        x = torch.randn(8, channels, 256, 256)

        def step():
            with torch.inference_mode():
                return net(x)

        units = 1.0
    else:
        src = np.ones(2**26, dtype=np.float32)
        dst = np.empty_like(src)

        def step():
            np.copyto(dst, src)

        units = 0.256  # GB copied
    step()
    barrier.wait()
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        step()
        n += 1
    queue.put(n * units / (time.perf_counter() - t))


def side_by_side(target, args: tuple, procs: int) -> list:
    """Run ``target(*args, barrier, queue)`` in ``procs`` spawned processes that start their
    measured part together (``barrier``); each puts one result on ``queue``. The results."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    ps = [ctx.Process(target=target, args=(*args, barrier, queue)) for _ in range(procs)]
    for p in ps:
        p.start()
    out = [queue.get() for _ in ps]
    for p in ps:
        p.join()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--kinds", nargs="+", default=["mm", "net", "copy"])
    args = ap.parse_args()
    for kind in args.kinds:
        alone = side_by_side(work, (kind, args.seconds), 1)[0]
        both = side_by_side(work, (kind, args.seconds), 2)
        print(
            json.dumps(
                {
                    "workload": kind,
                    "alone": round(alone, 3),
                    "two_at_once": [round(v, 3) for v in both],
                    "per_process_slowdown": round(alone / (sum(both) / 2), 3),
                    "two_process_speedup": round(sum(both) / alone, 3),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
