"""docs/cluster.md: its SLURM configurations (dask-jobqueue) generate the job scripts it promises.

The page's ``# cluster: cpu`` and ``# cluster: gpu`` code blocks are run as written; no job is
submitted (``job_script()`` only renders the script).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "cluster.md"


def _cluster_block(kind: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    matching = [b for b in blocks if b.startswith(f"# cluster: {kind}\n")]
    assert len(matching) == 1, f"docs/cluster.md has no single '# cluster: {kind}' block"
    return matching[0]


def _job_script(kind: str) -> str:
    pytest.importorskip("dask_jobqueue")
    namespace: dict = {}
    exec(compile(_cluster_block(kind), f"docs/cluster.md ({kind})", "exec"), namespace)
    cluster = namespace["cluster"]
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def _worker_line(script: str) -> str:
    (line,) = [
        line for line in script.splitlines() if "dask_worker" in line or "dask worker" in line
    ]
    return line


def test_cpu_job_script_runs_single_threaded_workers_that_restart() -> None:
    script = _job_script("cpu")
    assert "#SBATCH --cpus-per-task=32" in script and "#SBATCH --mem=128G" in script
    assert "#SBATCH -t 08:00:00" in script and "export OMP_NUM_THREADS=1" in script
    worker = _worker_line(script)
    assert "--nthreads 1" in worker and "--nworkers 32" in worker
    assert "--memory-limit 4.00GiB" in worker
    assert "--lifetime 55m" in worker and "--lifetime-restart" in worker
    assert "export DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE=False" in script  # never paused
    assert "GPU" not in script


def test_gpu_job_script_gives_each_worker_one_gpu() -> None:
    script = _job_script("gpu")
    assert "#SBATCH --gres=gpu:1" in script and "#SBATCH -p gpu" in script
    worker = _worker_line(script)
    assert "--resources GPU=1" in worker  # one block at a time on the GPU...
    assert "--nthreads 8" in worker  # ...with the job's cores for torch's CPU side
    assert "--nworkers" not in worker  # one worker process per job, so one per GPU
    assert "--lifetime-restart" in worker
    assert "export DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE=False" in script
