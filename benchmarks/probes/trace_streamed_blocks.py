"""Per-block memory trace of one streamed restoration (throw-away probe, kept as it was run).

After every block: the peak RSS within the block (VmHWM, reset through /proc/self/clear_refs) and
the RSS after ``malloc_trim``. Linux only. Method from env ``M`` (default skeleton).

    .venv/bin/python benchmarks/probes/trace_streamed_blocks.py INPUT.ome.zarr Z,Y,X MODEL_DIR
    (RESULTS.md: bench-out/throughput_v4/input_63x1000x128.ome.zarr 256,64,128
     bench-out/fibsem_v2/models/fibsem_t2_yhalf_x4; with MALLOC_MMAP_THRESHOLD_=...,
     MALLOC_TRIM_THRESHOLD_=..., PYTHONMALLOC=malloc or M=cubic for the variants)
"""
import os
import shutil
import sys
import time
from pathlib import Path

from skelem.inference.restore import RestoreOptions, restore_to_file
from skelem.io import open_volume
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

inp, block = sys.argv[1], tuple(map(int, sys.argv[2].split(",")))
art = load_artifact(sys.argv[3])
vol = open_volume(inp)
out = Path(f"/tmp/memprobe2_out_{os.getpid()}.ome.zarr")
shutil.rmtree(out, ignore_errors=True)
print("start", status(), flush=True)
reset_hwm()
t = time.time()
def prog(ev):
    s = status()
    print(ev.step, ev.total, "block peak", s["VmHWM"], "rss after", s["VmRSS"],
          f"{time.time()-t:.0f}s", flush=True)
    reset_hwm()
restore_to_file(vol, out, art,
                options=RestoreOptions(method=os.environ.get("M","skeleton"), block_shape=block),
                overwrite=True, progress=prog)
print("end", status(), flush=True)
