"""The resumable store of a streamed run: what a rerun trusts, and what it refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from skelem.errors import OutputExistsError
from skelem.inference.planner import plan_blocks
from skelem.inference.store import (
    PROGRESS_FILE,
    create_store_array,
    open_for_resume,
    plan_fingerprint,
    read_done_positions,
    write_progress,
)

SHAPE, CHUNKS = (16, 21, 18), (4, 8, 8)


@pytest.fixture
def plan():
    return plan_blocks((6, 21, 18), 3, (4, 8, 8), (2, 2, 2), align=4, chunks=CHUNKS)


def _store(path, plan, done_blocks, run_key=""):
    array = create_store_array(path, SHAPE, np.dtype("float32"), CHUNKS, None)
    done = np.zeros(len(plan), dtype=bool)
    done[:done_blocks] = True
    fingerprint = plan_fingerprint(plan, SHAPE, np.float32, CHUNKS, run_key)
    write_progress(path / PROGRESS_FILE, fingerprint, run_key, array.path, done)
    return fingerprint


def test_a_matching_store_resumes_with_its_done_blocks(plan, tmp_path):
    path = tmp_path / "o.zarr"
    fingerprint = _store(path, plan, 3, "skeleton v1")
    array, done = open_for_resume(path, path / PROGRESS_FILE, fingerprint, "error")
    assert array is not None and done.tolist() == [True] * 3 + [False] * (len(plan) - 3)
    assert read_done_positions(path) == [0, 1, 2]
    state = json.loads((path / PROGRESS_FILE).read_text())
    assert state["done"] == [[0, 3]] and state["run_key"] == "skeleton v1"
    assert not list(path.glob(f".{PROGRESS_FILE}.partial-*"))  # no temporary left behind


def test_another_plan_or_run_key_is_refused_or_restarted(plan, tmp_path):
    path = tmp_path / "o.zarr"
    _store(path, plan, 2)
    other = plan_blocks((6, 21, 18), 3, (8, 8, 8), (2, 2, 2), align=4, chunks=CHUNKS)
    for fingerprint in (
        plan_fingerprint(other, SHAPE, np.float32, CHUNKS),
        plan_fingerprint(plan, SHAPE, np.float32, CHUNKS, "another model"),
    ):
        with pytest.raises(OutputExistsError, match="another run"):
            open_for_resume(path, path / PROGRESS_FILE, fingerprint, "error")
    array, done = open_for_resume(path, path / PROGRESS_FILE, "x", "restart")
    assert array is None and not path.exists()


def test_a_store_without_or_with_a_corrupt_progress_file_is_not_trusted(plan, tmp_path):
    path = tmp_path / "o.zarr"
    zarr.create_array(store=str(path), shape=SHAPE, dtype="float32", chunks=CHUNKS)
    fingerprint = plan_fingerprint(plan, SHAPE, np.float32, CHUNKS)
    with pytest.raises(OutputExistsError, match="no progress file"):
        open_for_resume(path, path / PROGRESS_FILE, fingerprint, "error")
    (path / PROGRESS_FILE).write_text("{not json")
    with pytest.raises(OutputExistsError, match="no progress file"):
        open_for_resume(path, path / PROGRESS_FILE, fingerprint, "error")
    assert read_done_positions(path) is None
