"""Is a restore slower when a second one runs on the other core, and where does the time go?

One process restores a 63 x ROWS x 250 slab of ``fibsem_medulla_t2`` (x4, the pretrained model,
one torch thread, in memory: the read region of one block of the Dask benchmark's large volume)
alone; then two processes restore it at the same time. Each reports its wall time, user and
system CPU seconds and minor page faults (``getrusage``), so a slowdown can be told apart as
compute contention (user time up) or kernel work (system time, page faults).

Usage: ``.venv/bin/python benchmarks/probes/concurrent_restore.py --method skelem [--rows 480]``
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from core_contention import side_by_side

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "fibsem_medulla_t2" / "raw.tif"


def work(method: str, rows: int, barrier, queue) -> None:
    import numpy as np
    import tifffile
    import torch

    from skelem.inference.restore import RestoreOptions, restore_volume
    from skelem.io import Volume
    from skelem.memory import set_malloc_reuse
    from skelem.models.artifact import load_artifact
    from skelem.models.pretrained import pretrained_model_dir

    set_malloc_reuse()
    torch.set_num_threads(1)
    raw = tifffile.imread(DATA)[::4]
    slab = np.concatenate([raw, raw[:, ::-1]], axis=1)[:, :rows]
    vol = Volume(np.ascontiguousarray(slab), (0.04, 0.01, 0.01), "micrometer", "slab")
    art = load_artifact(pretrained_model_dir(4))
    opts = RestoreOptions(method=method, normalize="input", device="cpu")
    barrier.wait()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    restore_volume(vol, art, 4, opts)
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    queue.put(
        {
            "wall_s": round(t1 - t0, 2),
            "user_s": round(r1.ru_utime - r0.ru_utime, 2),
            "sys_s": round(r1.ru_stime - r0.ru_stime, 2),
            "minor_faults": r1.ru_minflt - r0.ru_minflt,
        }
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--method", default="skelem")
    ap.add_argument("--rows", type=int, default=480)
    args = ap.parse_args()
    alone = side_by_side(work, (args.method, args.rows), 1)
    both = side_by_side(work, (args.method, args.rows), 2)
    print(json.dumps({"method": args.method, "rows": args.rows, "alone": alone, "two": both}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
