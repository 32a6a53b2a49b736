"""Runners: in memory, streamed into zarr, resumed after an interruption, memory-bounded."""

from __future__ import annotations

import gc
import json
import tracemalloc
import weakref

import numpy as np
import pytest
import zarr

from skelem.errors import OutputExistsError
from skelem.events import EventRecorder
from skelem.inference.planner import output_shape, plan_blocks
from skelem.inference.runner import (
    PROGRESS_FILE,
    finalize_store,
    plan_fingerprint,
    read_done_positions,
    run_in_memory,
    run_streaming,
)

from .toy_models import affine_model, array_reader, box_filter_model, untiled

FACTOR = 3
CHUNKS = (4, 8, 8)


class Interrupted(RuntimeError):
    """Stands for a crash (kill, out of memory, power cut) during a run."""


class CountingModel:
    """Wraps a model; counts calls and can crash at a given call number (1-based)."""

    def __init__(self, model, crash_at: int | None = None) -> None:
        self.model = model
        self.crash_at = crash_at
        self.calls: list[tuple[int, int, int]] = []

    def __call__(self, block_input, block):
        if self.crash_at is not None and len(self.calls) + 1 == self.crash_at:
            raise Interrupted(f"crash at block {block.index}")
        self.calls.append(block.index)
        return self.model(block_input, block)


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(0).random((6, 21, 18))


@pytest.fixture
def plan(volume):
    return plan_blocks(volume.shape, FACTOR, (4, 8, 8), (2, 2, 2), align=4, chunks=CHUNKS)


def stream(volume, plan, path, model, **kwargs):
    return run_streaming(
        array_reader(volume),
        model,
        plan,
        path,
        output_shape(volume.shape, FACTOR),
        np.float64,
        CHUNKS,
        **kwargs,
    )


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


def test_streaming_equals_in_memory(volume, plan, tmp_path):
    model = box_filter_model(FACTOR, volume.shape, (1, 2, 2))
    expected = run_in_memory(
        array_reader(volume), model, plan, output_shape(volume.shape, FACTOR), np.float64
    )
    np.testing.assert_array_equal(expected, untiled(model, volume, FACTOR))
    recorder = EventRecorder()
    array = stream(volume, plan, tmp_path / "out.zarr.partial", model, progress=recorder)
    np.testing.assert_array_equal(array[:], expected)
    assert array.chunks == CHUNKS
    assert [e.step for e in recorder.events] == list(range(1, len(plan) + 1))
    reopened = zarr.open_array(tmp_path / "out.zarr.partial", mode="r")
    np.testing.assert_array_equal(reopened[:], expected)
    assert read_done_positions(tmp_path / "out.zarr.partial") == list(range(len(plan)))


@pytest.mark.parametrize("crash_at", (1, 2, 7))
def test_interrupted_run_resumes_without_recomputing_done_blocks(volume, plan, tmp_path, crash_at):
    path = tmp_path / "out.zarr.partial"
    model = affine_model(FACTOR)
    expected = stream(volume, plan, tmp_path / "reference.zarr", model)[:]

    crashing = CountingModel(model, crash_at=crash_at)
    with pytest.raises(Interrupted):
        stream(volume, plan, path, crashing)
    done = crash_at - 1
    assert read_done_positions(path) == list(range(done))

    resumed = CountingModel(model)
    recorder = EventRecorder()
    array = stream(volume, plan, path, resumed, progress=recorder)
    assert len(resumed.calls) == len(plan) - done
    assert set(resumed.calls).isdisjoint(b.index for b in plan[:done])
    np.testing.assert_array_equal(array[:], expected)
    steps = [e.step for e in recorder.events]
    assert steps == ([done] if done else []) + list(range(done + 1, len(plan) + 1))


def test_max_blocks_runs_in_rounds_that_resume_to_the_same_result(volume, plan, tmp_path):
    """``max_blocks``: each call processes at most that many new blocks; rounds add up to a full
    run."""
    path = tmp_path / "out.zarr.partial"
    model = affine_model(FACTOR)
    expected = stream(volume, plan, tmp_path / "reference.zarr", model)[:]
    assert len(plan) > 4
    rounds = []
    while len(read_done_positions(path) or []) < len(plan):
        counting = CountingModel(model)
        array = stream(volume, plan, path, counting, max_blocks=2)
        rounds.append(counting.calls)
        assert len(rounds) <= len(plan)
    assert [len(r) for r in rounds[:-1]] == [2] * (len(rounds) - 1) and 1 <= len(rounds[-1]) <= 2
    assert sorted(i for r in rounds for i in r) == sorted(b.index for b in plan)  # each block once
    np.testing.assert_array_equal(array[:], expected)
    with pytest.raises(ValueError, match="max_blocks"):
        stream(volume, plan, tmp_path / "other.zarr", model, max_blocks=0)
    assert not (tmp_path / "other.zarr").exists()  # refused before any store is created


def test_finished_store_is_not_recomputed(volume, plan, tmp_path):
    path = tmp_path / "out.zarr.partial"
    stream(volume, plan, path, affine_model(FACTOR))
    again = CountingModel(affine_model(FACTOR))
    stream(volume, plan, path, again)
    assert again.calls == []


def test_another_run_key_is_refused_or_restarted(volume, plan, tmp_path):
    path = tmp_path / "out.zarr.partial"
    with pytest.raises(Interrupted):
        stream(
            volume, plan, path, CountingModel(affine_model(FACTOR), crash_at=4), run_key="model-a"
        )
    with pytest.raises(OutputExistsError, match="another run"):
        stream(volume, plan, path, CountingModel(affine_model(FACTOR)), run_key="model-b")
    restarted = CountingModel(box_filter_model(FACTOR, volume.shape, (1, 1, 1)))
    array = stream(volume, plan, path, restarted, run_key="model-b", on_mismatch="restart")
    assert len(restarted.calls) == len(plan)
    np.testing.assert_array_equal(array[:], untiled(restarted.model, volume, FACTOR))


def test_another_plan_is_refused(volume, plan, tmp_path):
    path = tmp_path / "out.zarr.partial"
    with pytest.raises(Interrupted):
        stream(volume, plan, path, CountingModel(affine_model(FACTOR), crash_at=3))
    other = plan_blocks(volume.shape, FACTOR, (8, 8, 8), (2, 2, 2), align=4, chunks=CHUNKS)
    assert plan_fingerprint(other, (16, 21, 18), np.float64, CHUNKS) != plan_fingerprint(
        plan, (16, 21, 18), np.float64, CHUNKS
    )
    with pytest.raises(OutputExistsError):
        stream(volume, other, path, affine_model(FACTOR))


def test_store_without_progress_file_is_refused(volume, plan, tmp_path):
    path = tmp_path / "out.zarr.partial"
    zarr.create_array(store=str(path), shape=(16, 21, 18), dtype="float64", chunks=CHUNKS)
    with pytest.raises(OutputExistsError, match="no progress file"):
        stream(volume, plan, path, affine_model(FACTOR))


def test_corrupt_progress_file_is_not_trusted(volume, plan, tmp_path):
    path = tmp_path / "out.zarr.partial"
    with pytest.raises(Interrupted):
        stream(volume, plan, path, CountingModel(affine_model(FACTOR), crash_at=3))
    (path / PROGRESS_FILE).write_text("{not json")
    with pytest.raises(OutputExistsError):
        stream(volume, plan, path, affine_model(FACTOR))


def test_progress_file_is_small_json(volume, plan, tmp_path):
    path = tmp_path / "out.zarr.partial"
    stream(volume, plan, path, affine_model(FACTOR), run_key="skeleton v1")
    state = json.loads((path / PROGRESS_FILE).read_text())
    assert state["done"] == [[0, len(plan)]]
    assert state["run_key"] == "skeleton v1" and state["n_blocks"] == len(plan)
    assert not list(path.glob(f".{PROGRESS_FILE}.partial-*"))  # no temporary left behind


def test_create_store_callable_with_array_in_a_group(volume, plan, tmp_path):
    """A caller-made store (e.g. OME-Zarr with the image at ``0``) is reopened on resume."""

    def create_store(path, shape, dtype, chunks):
        group = zarr.open_group(str(path), mode="w-")
        group.attrs["made_by"] = "test"
        return group.create_array("0", shape=shape, dtype=dtype, chunks=chunks, fill_value=0)

    path = tmp_path / "image.ome.zarr.partial"
    model = affine_model(FACTOR)
    with pytest.raises(Interrupted):
        stream(volume, plan, path, CountingModel(model, crash_at=5), create_store=create_store)
    resumed = CountingModel(model)
    array = stream(volume, plan, path, resumed, create_store=create_store)
    assert len(resumed.calls) == len(plan) - 4
    assert array.path == "0"
    np.testing.assert_array_equal(array[:], untiled(model, volume, FACTOR))


def test_write_regions_must_be_chunk_aligned(volume, tmp_path):
    unaligned = plan_blocks(volume.shape, FACTOR, (5, 8, 8), (0, 0, 0))
    with pytest.raises(ValueError, match="not aligned"):
        stream(volume, unaligned, tmp_path / "out.zarr.partial", affine_model(FACTOR))


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
    with pytest.raises(Interrupted):
        stream(volume, plan, partial, CountingModel(affine_model(FACTOR), crash_at=2))
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


@pytest.mark.parametrize("streaming", (False, True))
def test_runner_holds_one_block_at_a_time(tmp_path, streaming):
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

    out_shape = output_shape(input_shape, 2)
    if streaming:
        run_streaming(
            read_block, process, plan, tmp_path / "o.zarr", out_shape, np.float32, (8, 16, 16)
        )
    else:
        run_in_memory(read_block, process, plan, out_shape)
    assert inputs.max_live == 1
    assert outputs.max_live == 1


def test_streaming_peak_memory_does_not_grow_with_the_volume(tmp_path):
    """Doubling the volume (same blocks) must not raise the peak of traced allocations much."""

    def peak_for(input_shape, name):
        plan = plan_blocks(input_shape, 2, (8, 32, 32), (1, 4, 4), chunks=(8, 32, 32))
        model = affine_model(2)

        def read_block(slices):
            z, y, x = np.meshgrid(*(np.arange(s.start, s.stop) for s in slices), indexing="ij")
            return np.sin(0.3 * z + 0.1 * y) * np.cos(0.2 * x)

        out_shape = output_shape(input_shape, 2)
        gc.collect()
        tracemalloc.start()
        run_streaming(read_block, model, plan, tmp_path / name, out_shape, np.float32, (8, 32, 32))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak, len(plan)

    small, n_small = peak_for((5, 64, 128), "small.zarr")
    large, n_large = peak_for((5, 128, 256), "large.zarr")
    assert n_large == 4 * n_small
    assert large < 1.3 * small, (small, large)


@pytest.mark.parametrize("streaming", (False, True))
def test_freed_heap_is_returned_after_every_block(tmp_path, streaming, monkeypatch):
    """Each finished block gives its freed memory back (glibc arenas otherwise creep up, block by
    block)."""
    import skelem.inference.runner as runner

    calls = []
    monkeypatch.setattr(runner, "release_free_memory", lambda: calls.append(1))
    input_shape = (5, 32, 32)
    plan = plan_blocks(input_shape, 2, (8, 16, 16), (1, 2, 2), chunks=(8, 16, 16))
    out_shape = output_shape(input_shape, 2)
    base = np.random.default_rng(0).random(input_shape)
    if streaming:
        store = tmp_path / "o.zarr"
        reader = array_reader(base)
        run_streaming(reader, affine_model(2), plan, store, out_shape, np.float32, (8, 16, 16))
    else:
        run_in_memory(array_reader(base), affine_model(2), plan, out_shape)
    assert len(calls) == len(plan) > 1


def test_release_free_memory_finds_glibc_on_linux():
    import platform

    from skelem.inference.runner import _malloc_trim, release_free_memory

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim exists only in glibc")
    assert _malloc_trim() is not None
    release_free_memory()  # must not raise
