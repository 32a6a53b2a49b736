"""CPU an idle local Dask cluster of SkelEM's costs: per worker process and for the client's.

Starts ``skelem.inference.dask_runner.local_client`` with 2 workers (with ``--dask-defaults``,
Dask's own periodic-work settings instead of ``QUIET_CONFIG``), waits 3 s, then reports each
process's CPU time over ``--seconds`` of doing nothing, as a share of one core.

Usage: ``.venv/bin/python benchmarks/probes/dask_idle_cpu.py [--dask-defaults]`` (quiet machine).
"""

from __future__ import annotations

import argparse
import json
import time
from unittest import mock


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--dask-defaults", action="store_true")
    args = ap.parse_args()
    import psutil

    from skelem.inference import dask_runner

    quiet = {} if args.dask_defaults else dask_runner.QUIET_CONFIG
    with mock.patch.object(dask_runner, "QUIET_CONFIG", quiet):
        with dask_runner.local_client(2, "1280MiB", lifetime=None, dashboard_address=None):
            time.sleep(3)
            procs = [psutil.Process()] + psutil.Process().children(recursive=True)

            def cpu(p):
                t = p.cpu_times()
                return t.user + t.system

            before = [cpu(p) for p in procs]
            t0 = time.perf_counter()
            time.sleep(args.seconds)
            dt = time.perf_counter() - t0
            shares = [round(100 * (cpu(p) - b) / dt, 1) for p, b in zip(procs, before, strict=True)]
    print(
        json.dumps(
            {
                "dask_defaults": args.dask_defaults,
                "client_pct": shares[0],
                "other_processes_pct": shares[1:],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
