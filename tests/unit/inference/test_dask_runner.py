"""The Dask block runner: equal to the in-memory runner, one writer per chunk, no lock, resumable
after a failed task or a killed worker, retried tasks writing the same bytes, the per-worker setup
run once per worker (2 single-threaded worker processes, toy models, no networks)."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zarr

from skelem.errors import OutputExistsError
from skelem.events import EventRecorder
from skelem.inference.dask_runner import run_on_dask
from skelem.inference.planner import output_shape, plan_blocks
from skelem.inference.runner import run_in_memory
from skelem.inference.store import PROGRESS_FILE, read_done_positions

from .toy_models import affine_model, array_reader, box_filter_model

distributed = pytest.importorskip("distributed")

FACTOR = 3
CHUNKS = (4, 8, 8)
INPUT_SHAPE = (6, 21, 18)


class Flaky(RuntimeError):
    """A task failure (out of memory, a node's hiccup...)."""


@dataclass(frozen=True)
class ToySetup:
    """Picklable per-worker setup: a toy model over an in-memory volume.

    ``marks`` (a folder) records every setup call; ``fail_once`` makes each block's first attempt
    fail; ``fail_always`` names block indices that always fail; ``seconds`` per block.
    """

    volume: np.ndarray
    model: str = "affine"
    marks: str | None = None
    fail_once: bool = False
    fail_always: tuple[tuple[int, int, int], ...] = ()
    seconds: float = 0.0

    def __call__(self):
        if self.marks:
            Path(self.marks, f"setup-{os.getpid()}-{uuid.uuid4().hex}").touch()
        if self.model == "affine":
            model = affine_model(FACTOR)
        else:
            model = box_filter_model(FACTOR, self.volume.shape, (1, 2, 2))

        def process(block_input, block):
            time.sleep(self.seconds)
            if block.index in self.fail_always:
                raise Flaky(f"block {block.index} failed")
            if self.fail_once:
                marker = Path(self.marks, "failed-" + "-".join(map(str, block.index)))
                if not marker.exists():
                    marker.touch()
                    raise Flaky(f"first attempt of block {block.index}")
            return model(block_input, block)

        return array_reader(self.volume), process


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes, no dashboard."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return np.random.default_rng(0).random(INPUT_SHAPE)


@pytest.fixture(scope="module")
def plan():
    return plan_blocks(INPUT_SHAPE, FACTOR, (4, 8, 8), (2, 2, 2), align=4, chunks=CHUNKS)


@pytest.fixture(scope="module")
def expected(volume, plan) -> np.ndarray:
    return run_in_memory(
        array_reader(volume), affine_model(FACTOR), plan, output_shape(INPUT_SHAPE, FACTOR), float
    )


def run(client, setup, plan, path, **kwargs):
    return run_on_dask(
        client, setup, plan, path, output_shape(INPUT_SHAPE, FACTOR), np.float64, CHUNKS, **kwargs
    )


def _chunk_ids(write: tuple[tuple[int, int], ...]) -> set[tuple[int, ...]]:
    ranges = [range(a // c, -(-b // c)) for (a, b), c in zip(write, CHUNKS, strict=True)]
    return {(i, j, k) for i in ranges[0] for j in ranges[1] for k in ranges[2]}


def test_dask_equals_in_memory_with_one_writer_per_chunk_and_no_lock(
    client, volume, plan, tmp_path
):
    """Two worker processes write exactly the in-memory result; every chunk of the output is
    written by exactly one task (write regions on the chunk grid) and no Dask lock exists."""
    model_out = run_in_memory(
        array_reader(volume),
        box_filter_model(FACTOR, INPUT_SHAPE, (1, 2, 2)),
        plan,
        output_shape(INPUT_SHAPE, FACTOR),
        float,
    )
    recorder = EventRecorder()
    done = run(client, ToySetup(volume, "box"), plan, tmp_path / "o.zarr", progress=recorder)
    np.testing.assert_array_equal(done.array[:], model_out)
    assert len({r.pid for r in done.reports}) == 2  # both worker processes took blocks
    writers: dict[tuple[int, ...], int] = {}
    for report in done.reports:
        for (start, stop), chunk, n in zip(report.write, CHUNKS, done.array.shape, strict=True):
            assert start % chunk == 0 and (stop % chunk == 0 or stop == n)
        for chunk_id in _chunk_ids(report.write):
            writers[chunk_id] = writers.get(chunk_id, 0) + 1
    grid = [-(-n // c) for n, c in zip(done.array.shape, CHUNKS, strict=True)]
    assert len(writers) == int(np.prod(grid)) and set(writers.values()) == {1}
    assert sorted(r.position for r in done.reports) == list(range(len(plan)))
    assert [e.step for e in recorder.events] == list(range(1, len(plan) + 1))
    assert all(e.metrics["Mvoxel/s"] > 0 for e in recorder.events)
    leases = client.run_on_scheduler(
        lambda dask_scheduler: dict(dask_scheduler.extensions["semaphores"].max_leases)
    )
    assert leases == {}  # no distributed.Lock (a one-lease semaphore) was ever created


def test_the_worker_setup_runs_once_per_worker(client, volume, plan, tmp_path):
    """The model is loaded once per worker process (the plugin), not once per block."""
    marks = tmp_path / "marks"
    marks.mkdir()
    done = run(client, ToySetup(volume, marks=str(marks)), plan, tmp_path / "o.zarr")
    setup_pids = [int(p.name.split("-")[1]) for p in marks.glob("setup-*")]
    assert len(plan) == len(done.reports) > 2 * len(setup_pids) >= 2
    assert sorted(setup_pids) == sorted(set(client.run(os.getpid).values()))
    plugins = client.run(lambda dask_worker: list(dask_worker.plugins))
    assert not any(n.startswith("skelem-blocks") for names in plugins.values() for n in names)


def test_a_retried_task_writes_the_same_bytes(client, volume, plan, expected, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    setup = ToySetup(volume, marks=str(marks), fail_once=True)
    done = run(client, setup, plan, tmp_path / "o.zarr", retries=1)
    assert len(list(marks.glob("failed-*"))) == len(plan)  # every block failed once
    np.testing.assert_array_equal(done.array[:], expected)


def test_a_failed_run_resumes_without_recomputing_done_blocks(
    client, volume, plan, expected, tmp_path
):
    path = tmp_path / "o.zarr"
    broken = ToySetup(volume, fail_always=(plan[-1].index,))
    with pytest.raises(Flaky):
        run(client, broken, plan, path, retries=0)
    done_before = read_done_positions(path)
    assert len(plan) - 1 not in done_before
    resumed = run(client, ToySetup(volume), plan, path)
    assert resumed.skipped == len(done_before)
    assert set(r.position for r in resumed.reports).isdisjoint(done_before)
    np.testing.assert_array_equal(resumed.array[:], expected)
    state = json.loads((path / PROGRESS_FILE).read_text())
    assert state["done"] == [[0, len(plan)]]
    again = run(client, ToySetup(volume), plan, path)  # finished: nothing recomputed
    assert again.reports == []


def test_another_run_key_is_refused_or_restarted(client, volume, plan, expected, tmp_path):
    path = tmp_path / "o.zarr"
    run(client, ToySetup(volume), plan, path, run_key="model-a")
    with pytest.raises(OutputExistsError, match="another run"):
        run(client, ToySetup(volume), plan, path, run_key="model-b")
    restarted = run(client, ToySetup(volume), plan, path, run_key="model-b", on_mismatch="restart")
    assert len(restarted.reports) == len(plan)
    np.testing.assert_array_equal(restarted.array[:], expected)


def test_write_regions_off_the_chunk_grid_are_refused(client, volume, tmp_path):
    unaligned = plan_blocks(INPUT_SHAPE, FACTOR, (5, 8, 8), (0, 0, 0))
    with pytest.raises(ValueError, match="not aligned"):
        run(client, ToySetup(volume), unaligned, tmp_path / "o.zarr")


def test_a_killed_worker_process_then_a_resume_equal_an_uninterrupted_run(
    client, volume, plan, expected, tmp_path
):
    """SIGKILL of a worker process mid-run: its block runs again elsewhere (the nanny restarts the
    worker, which is set up again); the store ends byte-identical to an uninterrupted run."""
    marks = tmp_path / "marks"
    marks.mkdir()
    pids = client.run(os.getpid)
    killed: list[int] = []

    def kill_one_worker(event) -> None:
        if event.step == 2 and not killed:
            pid = next(iter(pids.values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    setup = ToySetup(volume, marks=str(marks), seconds=0.3)
    done = run(client, setup, plan, tmp_path / "o.zarr", progress=kill_one_worker)
    assert killed
    np.testing.assert_array_equal(done.array[:], expected)
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "o.zarr", mode="r")[:], expected)
    assert read_done_positions(tmp_path / "o.zarr") == list(range(len(plan)))
    assert killed[0] not in client.run(os.getpid).values()


@dataclass(frozen=True)
class ThreadsSetup:
    """Per-worker setup whose blocks are filled with the torch thread count they ran on."""

    volume: np.ndarray

    def __call__(self):
        import torch

        model = affine_model(FACTOR)

        def process(block_input, block):
            return np.full_like(model(block_input, block), torch.get_num_threads())

        return array_reader(self.volume), process


@pytest.mark.parametrize(("left", "planned", "threads"), [(1, 1, 2), (1, 2, 1)])
def test_spare_cores_become_threads_fixed_by_the_whole_plan(
    volume, tmp_path, left, planned, threads
):
    """Fewer blocks than cores: the worker restores on the spare cores as torch threads; a resume
    with one block left of two keeps one thread (the thread count changes the last bit)."""
    from skelem.inference.dask_runner import DaskSettings, connect

    one_block = plan_blocks(
        INPUT_SHAPE, FACTOR, (16, 24, 24), (2, 2, 2), align=4, chunks=(16, 24, 24)
    )
    assert len(one_block) == 1
    with connect(DaskSettings(workers=2, lifetime=None), left, planned=planned) as client:
        assert len(client.scheduler_info()["workers"]) == 1  # no more workers than blocks left
        done = run_on_dask(
            client,
            ThreadsSetup(volume),
            one_block,
            tmp_path / "o.zarr",
            output_shape(INPUT_SHAPE, FACTOR),
            np.float64,
            (16, 24, 24),
        )
    assert set(np.unique(done.array[:])) == {threads}


def test_a_one_block_plan_runs_in_the_callers_process_and_gives_its_threads_back(volume, tmp_path):
    """A plan of one block gets an in-process worker (no process to start, torch not imported
    twice): its setup runs in this process, and the caller's torch thread count is what it was
    once the run is over; the output equals the in-memory one."""
    import torch

    from skelem.inference.dask_runner import DaskSettings, connect

    one_block = plan_blocks(
        INPUT_SHAPE, FACTOR, (16, 24, 24), (2, 2, 2), align=4, chunks=(16, 24, 24)
    )
    marks = tmp_path / "marks"
    marks.mkdir()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with connect(DaskSettings(workers=2, lifetime=None), 1, planned=1) as client:
            assert set(client.run(os.getpid).values()) == {os.getpid()}
            import psutil

            listening = [
                c.laddr.ip
                for c in psutil.Process().net_connections("inet")
                if c.status == psutil.CONN_LISTEN
            ]
            assert listening and set(listening) == {"127.0.0.1"}  # scheduler, worker, dashboard
            done = run_on_dask(
                client,
                ToySetup(volume, marks=str(marks)),
                one_block,
                tmp_path / "o.zarr",
                output_shape(INPUT_SHAPE, FACTOR),
                np.float64,
                (16, 24, 24),
            )
        assert torch.get_num_threads() == 1  # the worker ran on 2 (the test above checks)
    finally:
        torch.set_num_threads(before)
    assert [p.name.split("-")[1] for p in marks.iterdir()] == [str(os.getpid())]
    expected = run_in_memory(
        array_reader(volume),
        affine_model(FACTOR),
        one_block,
        output_shape(INPUT_SHAPE, FACTOR),
        float,
    )
    np.testing.assert_array_equal(done.array[:], expected)


def _hold_memory(fraction: float, dask_worker=None) -> float:
    """Make the worker process hold memory up to ``fraction`` of its limit (unmanaged memory,
    like a model and a freed-but-kept block); return the fraction it is at."""
    import psutil

    limit = dask_worker.memory_manager.memory_limit
    rss = psutil.Process().memory_info().rss
    dask_worker._skelem_held = np.ones(max(0, int(fraction * limit) - rss), dtype=np.uint8)
    return psutil.Process().memory_info().rss / limit


def test_a_local_worker_above_the_pause_fraction_still_runs_blocks() -> None:
    """Dask pauses a worker at 80% of its memory limit until its memory falls, which unmanaged
    memory never does: a paused worker stayed paused for good and the run never ended. SkelEM's
    local workers never pause (the nanny still restarts them at 95%)."""
    from skelem.inference.dask_runner import local_client

    with local_client(1, memory_limit="1GiB", lifetime=None, dashboard_address=None) as client:
        (at,) = client.run(_hold_memory, 0.88).values()
        assert 0.8 < at < 0.95
        time.sleep(1.0)  # the memory monitor looks every 100 ms
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6


def test_an_in_process_cluster_is_closed_when_the_run_fails() -> None:
    """A failed run (a bad block, a full disk) closes its in-process cluster; only Ctrl-C leaves
    it to the exiting process (its running block cannot be waited for)."""
    from skelem.inference.dask_runner import local_client

    with pytest.raises(Flaky):
        with local_client(1, lifetime=None, dashboard_address=None, in_process=True) as client:
            cluster = client.cluster
            raise Flaky("a block failed")
    assert cluster.status.name == "closed"


def _periodic_work(dask_worker) -> dict:
    import dask

    return {
        "profile": dask.config.get("distributed.worker.profile.enabled"),
        "tick": dask.config.get("distributed.admin.tick.interval"),
        "callbacks": sorted(dask_worker.periodic_callbacks),
    }


def test_local_workers_run_without_the_profiler_and_with_rare_health_checks() -> None:
    """Dask's statistical profiler (a stack sample of every thread each 10 ms) and its 20-ms
    event-loop tick cost each worker ~3% of a core while idle and slowed tasks beside a second
    worker on two cores; the local workers SkelEM starts turn the profiler off and tick each
    second (the nanny's memory monitor, which restarts a worker at 95% of its limit, is kept)."""
    from skelem.inference.dask_runner import local_client

    with local_client(1, memory_limit="1GiB", lifetime=None, dashboard_address=None) as client:
        (seen,) = client.run(_periodic_work).values()
    assert seen["profile"] is False
    assert seen["tick"] == "1s"
    assert "profile" not in seen["callbacks"]
    assert "heartbeat" in seen["callbacks"]
