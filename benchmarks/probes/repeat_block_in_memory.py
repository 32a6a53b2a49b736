"""The same block restored N times in one process, no IO (throw-away probe, kept as it was run).

    .venv/bin/python benchmarks/probes/repeat_block_in_memory.py skeleton 40 24,176,128 [vary]
    (``vary``: three alternating block widths). Run from the repository root.
"""
import sys
import time

import numpy as np

from skelem.inference.methods import build_method
from skelem.inference.restore import RestoreOptions
from skelem.inference.runner import release_free_memory
from skelem.models.artifact import load_artifact


def status():
    d = {}
    for line in open("/proc/self/status"):
        k, v = line.split(":", 1)
        if k in ("VmRSS", "VmHWM"):
            d[k] = int(v.split()[0]) // 1024
    return d

def reset_hwm():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

method = sys.argv[1]
n = int(sys.argv[2])
shape = tuple(map(int, sys.argv[3].split(",")))
vary = len(sys.argv) > 4 and sys.argv[4] == "vary"
art = load_artifact("bench-out/fibsem_v2/models/fibsem_t2_yhalf_x4")
r = build_method(art, 4, RestoreOptions(method=method))
print("halo", r.halo, flush=True)
rng = np.random.default_rng(0)
t = time.time()
reset_hwm()
rss = []
for i in range(n):
    s = shape
    if vary:
        s = (shape[0], shape[1] - (i % 3) * 8, shape[2])
    block = rng.standard_normal(s).astype(np.float32)
    out = r.restore_block(block, (0, 64 * i, 0))
    del out, block
    release_free_memory()
    st = status()
    rss.append(st["VmRSS"])
    print(i, "peak", st["VmHWM"], "rss", st["VmRSS"], f"{time.time()-t:.0f}s", flush=True)
    reset_hwm()
print("rss first5", rss[:5], "last5", rss[-5:])
