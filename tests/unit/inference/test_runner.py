"""The in-memory runner, memory bounds, and finalising a streamed store (the Dask runner is tested
in test_dask_runner.py)."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import zarr

from skelem.errors import OutputExistsError
from skelem.events import EventRecorder
from skelem.inference.planner import output_shape, plan_blocks
from skelem.inference.runner import run_in_memory
from skelem.inference.store import (
    PROGRESS_FILE,
    create_store_array,
    finalize_store,
    plan_fingerprint,
    write_progress,
)

from .toy_models import affine_model, array_reader

FACTOR = 3
CHUNKS = (4, 8, 8)


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(0).random((6, 21, 18))


@pytest.fixture
def plan(volume):
    return plan_blocks(volume.shape, FACTOR, (4, 8, 8), (2, 2, 2), align=4, chunks=CHUNKS)


def stream(volume, plan, path, model, done_blocks=None):
    """A store as the Dask runner leaves it: the model's output and a progress file recording the
    first ``done_blocks`` blocks (all by default) as done."""
    out_shape = output_shape(volume.shape, FACTOR)
    array = create_store_array(path, out_shape, np.dtype(np.float64), CHUNKS, None)
    array[:] = run_in_memory(array_reader(volume), model, plan, out_shape, np.float64)
    done = np.zeros(len(plan), dtype=bool)
    done[: len(plan) if done_blocks is None else done_blocks] = True
    fingerprint = plan_fingerprint(plan, out_shape, np.float64, CHUNKS)
    write_progress(path / PROGRESS_FILE, fingerprint, "", array.path, done)
    return array


def test_in_memory_runner_reports_progress(volume, plan):
    recorder = EventRecorder()
    out = run_in_memory(
        array_reader(volume),
        affine_model(FACTOR),
        plan,
        output_shape(volume.shape, FACTOR),
        progress=recorder,
    )
    assert out.dtype == np.float32
    assert [e.step for e in recorder.events] == list(range(1, len(plan) + 1))
    assert {(e.task, e.total) for e in recorder.events} == {("blocks", len(plan))}


def test_wrong_block_output_shape_is_reported(volume, plan):
    def bad_model(block_input, block):
        return block_input[:, :-1]

    with pytest.raises(ValueError, match="does not match"):
        run_in_memory(array_reader(volume), bad_model, plan, output_shape(volume.shape, FACTOR))


def test_finalize_removes_progress_and_renames(volume, plan, tmp_path):
    partial = tmp_path / "out.zarr.partial"
    final = tmp_path / "out.zarr"
    expected = stream(volume, plan, partial, affine_model(FACTOR))[:]
    assert finalize_store(partial, final) == final
    assert not partial.exists() and not (final / PROGRESS_FILE).exists()
    np.testing.assert_array_equal(zarr.open_array(final, mode="r")[:], expected)

    stream(volume, plan, partial, affine_model(FACTOR))
    with pytest.raises(OutputExistsError):
        finalize_store(partial, final)
    assert (partial / PROGRESS_FILE).exists()  # a refused finalisation leaves the run resumable
    finalize_store(partial, final, overwrite=True)
    assert not partial.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]


def test_finalize_refuses_an_incomplete_store(volume, plan, tmp_path):
    partial = tmp_path / "out.zarr.partial"
    stream(volume, plan, partial, affine_model(FACTOR), done_blocks=1)
    with pytest.raises(ValueError, match="incomplete"):
        finalize_store(partial, tmp_path / "out.zarr")


# ---------------------------------------------------------------------------------------------
# memory bounds


class LiveArrays:
    """Counts how many block inputs/outputs are alive at once (via weak references)."""

    def __init__(self) -> None:
        self.live = 0
        self.max_live = 0

    def track(self, array: np.ndarray) -> np.ndarray:
        self.live += 1
        self.max_live = max(self.max_live, self.live)
        weakref.finalize(array, self._release)
        return array

    def _release(self) -> None:
        self.live -= 1


def test_runner_holds_one_block_at_a_time():
    input_shape = (5, 64, 64)
    plan = plan_blocks(input_shape, 2, (8, 16, 16), (1, 2, 2), chunks=(8, 16, 16))
    assert len(plan) == 32
    inputs, outputs = LiveArrays(), LiveArrays()
    base = np.random.default_rng(0).random(input_shape)

    def read_block(slices):
        return inputs.track(base[slices].copy())

    model = affine_model(2)

    def process(block_input, block):
        return outputs.track(model(block_input, block))

    run_in_memory(read_block, process, plan, output_shape(input_shape, 2))
    assert inputs.max_live == 1
    assert outputs.max_live == 1


def test_freed_heap_is_returned_after_every_block(monkeypatch):
    """Each finished block gives its freed memory back (glibc arenas otherwise creep up, block by
    block)."""
    import skelem.inference.runner as runner

    calls = []
    monkeypatch.setattr(runner, "release_free_memory", lambda: calls.append(1))
    input_shape = (5, 32, 32)
    plan = plan_blocks(input_shape, 2, (8, 16, 16), (1, 2, 2), chunks=(8, 16, 16))
    out_shape = output_shape(input_shape, 2)
    base = np.random.default_rng(0).random(input_shape)
    run_in_memory(array_reader(base), affine_model(2), plan, out_shape)
    assert len(calls) == len(plan) > 1
