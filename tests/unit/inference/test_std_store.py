"""The per-voxel std store of a streamed ``--samples`` run resumes with its mean, or not at all."""

from __future__ import annotations

import numpy as np

from skelem.inference.writers import std_store
from skelem.io import create_ome_zarr

SHAPE, CHUNKS = (8, 16, 16), (4, 16, 16)


def _create(path, shape, dtype, chunks):
    return create_ome_zarr(path, shape, dtype, chunks, (1.0, 1.0, 1.0))


def test_std_store_is_reused_when_the_mean_resumes(tmp_path):
    mean, std = tmp_path / "m.ome.zarr.partial", tmp_path / "s.ome.zarr.partial"
    first = std_store(std, mean, SHAPE, CHUNKS, _create)  # a fresh run: no mean store yet
    first[:4] = 7.0
    mean.mkdir()  # the streamed mean, interrupted
    again = std_store(std, mean, SHAPE, CHUNKS, _create)
    assert mean.exists()
    assert np.all(np.asarray(again[:4]) == 7.0)


def test_a_missing_or_mismatched_std_store_restarts_the_mean(tmp_path):
    mean, std = tmp_path / "m.ome.zarr.partial", tmp_path / "s.ome.zarr.partial"
    mean.mkdir()
    (mean / "block-done").write_text("x")
    std_store(std, mean, SHAPE, CHUNKS, _create)
    assert not mean.exists(), "finished mean blocks without their std must be recomputed"
    mean.mkdir()
    array = std_store(std, mean, (8, 16, 32), (4, 16, 32), _create)  # another shape
    assert not mean.exists() and array.shape == (8, 16, 32)
