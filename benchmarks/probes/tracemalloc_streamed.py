"""Python allocations that survive between blocks 3 and 15 of a streamed restoration (tracemalloc;
throw-away probe, kept as it was run). Run from the repository root:

    .venv/bin/python benchmarks/probes/tracemalloc_streamed.py
"""
import gc
import os
import tracemalloc
from pathlib import Path

from skelem.inference.restore import RestoreOptions, restore_to_file
from skelem.io import open_volume
from skelem.models.artifact import load_artifact

tracemalloc.start(25)
art = load_artifact("bench-out/fibsem_v2/models/fibsem_t2_yhalf_x4")
vol = open_volume("bench-out/throughput_v4/input_63x1000x128.ome.zarr")
out = Path(f"/tmp/tm_out_{os.getpid()}.ome.zarr")
snaps = {}
def prog(ev):
    gc.collect()
    if ev.step in (3, 15):
        snaps[ev.step] = tracemalloc.take_snapshot()
        print(ev.step, tracemalloc.get_traced_memory(), flush=True)
restore_to_file(vol, out, art,
                options=RestoreOptions(method="skeleton", block_shape=(256, 64, 128)),
                overwrite=True, progress=prog)
stats = snaps[15].compare_to(snaps[3], "traceback")
for s in stats[:3]:
    print(s.size_diff, s.count_diff)
    for line in s.traceback.format(most_recent_first=True)[:14]:
        print("   ", line)
