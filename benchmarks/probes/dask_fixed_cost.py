"""The fixed cost of a local Dask cluster for one restore: start, torch in the workers, close.

Usage::

    .venv/bin/python benchmarks/probes/dask_fixed_cost.py [--workers 2]

Prints the seconds of each phase (the skelem import, the cluster start with its worker processes,
importing torch in every worker, closing the cluster).
"""

from __future__ import annotations

import argparse
import time


def _import_torch() -> int:
    import torch  # noqa: F401

    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    from skelem.inference.dask_runner import local_client

    imported = time.perf_counter()
    with local_client(args.workers, dashboard_address=None) as client:
        started = time.perf_counter()
        client.run(_import_torch)
        torched = time.perf_counter()
    closed = time.perf_counter()
    print(
        f"import {imported - start:.2f} s, cluster start {started - imported:.2f} s, "
        f"torch in workers {torched - started:.2f} s, close {closed - torched:.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
