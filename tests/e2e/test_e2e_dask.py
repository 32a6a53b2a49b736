"""``skelem restore ... -o OUT.ome.zarr`` on Dask: a local cluster of 1 or 2 worker processes or a
running scheduler gives the in-memory result; a client killed mid-run, run again, finishes it
byte for byte; the cluster options are checked in one sentence."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from skelem.inference.store import PROGRESS_FILE
from skelem.io import open_volume

from .cli_helpers import (
    SUBPROCESS_ENV,
    assert_success,
    assert_user_error,
    skelem,
    skelem_command,
)
from .conftest import Volumes

CUBIC = ("--method", "cubic")


def _read(path: Path) -> np.ndarray:
    return np.asarray(open_volume(path).read())


@pytest.fixture(scope="module")
def in_memory(volumes: Volumes, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """The cubic restoration written to TIFF (in memory, in this process)."""
    out = tmp_path_factory.mktemp("in_memory") / "cubic.tif"
    assert_success(skelem("restore", volumes.aniso, "-o", out, *CUBIC, "-q"))
    return _read(out)


@pytest.mark.parametrize("workers", (1, 2))
def test_one_or_two_workers_write_the_in_memory_result(
    volumes: Volumes, in_memory: np.ndarray, tmp_path: Path, workers: int
) -> None:
    out = tmp_path / "cubic.ome.zarr"
    result = skelem(
        "restore", volumes.aniso, "-o", out, *CUBIC, "--block", "12,24,24", "--workers", workers
    )
    assert_success(result)  # 3 x 2 x 2 = 12 blocks
    noun = "worker" if workers == 1 else "workers"
    assert f"local Dask cluster: {workers} {noun}" in result.stderr
    assert not (tmp_path / "cubic.ome.zarr.partial").exists()
    np.testing.assert_array_equal(_read(out), in_memory)


def test_a_running_scheduler_is_joined(
    volumes: Volumes, in_memory: np.ndarray, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        out = tmp_path / "cubic.ome.zarr"
        result = skelem(
            "restore", volumes.aniso, "-o", out, *CUBIC, "--scheduler", cluster.scheduler_address
        )
        assert_success(result)
        assert f"joined the Dask cluster at {cluster.scheduler_address}" in result.stderr
        assert len(cluster.workers) == 1  # the cluster outlives the run
    np.testing.assert_array_equal(_read(out), in_memory)


@pytest.mark.parametrize(
    ("extra", "output", "fragments"),
    (
        (("--workers", "0"), "o.ome.zarr", ["--workers", "at least 1"]),
        (("--workers", "2"), "o.tif", ["OME-Zarr"]),
        (("--scheduler", "tcp://127.0.0.1:9"), "o.ome.zarr", ["No Dask scheduler", "127.0.0.1:9"]),
        (("--workers", "1", "--scheduler", "tcp://127.0.0.1:9"), "o.ome.zarr", ["--scheduler"]),
    ),
)
def test_cluster_options_are_checked_in_one_sentence(
    volumes: Volumes, tmp_path: Path, extra: tuple[str, ...], output: str, fragments: list[str]
) -> None:
    result = skelem("restore", volumes.aniso, "-o", tmp_path / output, *CUBIC, "-q", *extra)
    assert_user_error(result, *fragments)
    assert not (tmp_path / output).exists()


def _children(pid: int) -> list[int]:
    """Descendants of ``pid`` (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _done_blocks(progress: Path) -> int:
    try:
        state = json.loads(progress.read_text())
    except (OSError, ValueError):
        return 0
    return sum(stop - start for start, stop in state["done"])


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_killed_client_run_again_finishes_byte_for_byte(
    volumes: Volumes, in_memory: np.ndarray, tmp_path: Path
) -> None:
    """SIGKILL of ``skelem restore`` once some blocks are recorded: its worker processes stop
    with it (none goes on writing), and the same command again completes the output, equal to
    the in-memory result."""
    out = tmp_path / "cubic.ome.zarr"
    args = ["restore", volumes.aniso, "-o", out, *CUBIC, "--block", "8,16,16", "--workers", 2, "-q"]
    progress = tmp_path / "cubic.ome.zarr.partial" / PROGRESS_FILE
    client = subprocess.Popen(
        skelem_command(*args),
        env=SUBPROCESS_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    try:
        while _done_blocks(progress) < 8:  # of 45 tiny blocks
            assert client.poll() is None, f"the restore ended first: {client.communicate()}"
            assert time.monotonic() < deadline, "no blocks were recorded"
            time.sleep(0.02)
        workers = _children(client.pid)
        client.send_signal(signal.SIGKILL)
        client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
    assert workers, "the local cluster's worker processes were not found"
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker kept running after the client was killed"
        time.sleep(0.1)
    assert not out.exists() and 8 <= _done_blocks(progress) < 45
    done = subprocess.run(
        skelem_command(*args), env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(_read(out), in_memory)
