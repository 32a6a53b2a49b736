"""Outputs appear complete or not at all, and existing outputs are only replaced on request."""

from __future__ import annotations

import os

import numpy as np
import pytest

import skelem.io.writers as writers
from skelem.errors import OutputExistsError
from skelem.io import commit_output, create_ome_zarr, open_volume, partial_path, write_volume

DATA = np.arange(5 * 16 * 12, dtype=np.uint16).reshape(5, 16, 12)
VOXEL = (0.04, 0.01, 0.01)


@pytest.mark.parametrize("name", ["out.tif", "out.zarr", "out.h5", "out.npy"])
def test_refuses_to_overwrite(tmp_path, name):
    write_volume(tmp_path / name, DATA, VOXEL)
    with pytest.raises(OutputExistsError, match="exists; pass --overwrite to replace it."):
        write_volume(tmp_path / name, DATA + 1, VOXEL)
    np.testing.assert_array_equal(open_volume(_uri(tmp_path / name)).read(), DATA)
    write_volume(tmp_path / name, DATA + 1, VOXEL, overwrite=True)
    np.testing.assert_array_equal(open_volume(_uri(tmp_path / name)).read(), DATA + 1)
    assert sorted(os.listdir(tmp_path)) == [name]  # no partial or old copy left behind


def _uri(path) -> str:
    return f"{path}:/data" if str(path).endswith(".h5") else str(path)


def test_failed_tiff_write_leaves_nothing(tmp_path, monkeypatch):
    import tifffile

    def broken_imwrite(path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"II*\x00 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken_imwrite)
    with pytest.raises(OSError, match="disk full"):
        write_volume(tmp_path / "out.tif", DATA, VOXEL)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_failed_zarr_write_leaves_nothing_or_the_old_output(tmp_path, monkeypatch, overwrite):
    if overwrite:
        write_volume(tmp_path / "out.zarr", DATA, VOXEL)
    original = writers.create_ome_zarr

    def create_then_fail(path, *args, **kwargs):
        original(path, *args, **kwargs)[0] = 1  # a few chunks written...
        raise RuntimeError("killed")  # ...then the run dies

    monkeypatch.setattr(writers, "create_ome_zarr", create_then_fail)
    with pytest.raises(RuntimeError, match="killed"):
        write_volume(tmp_path / "out.zarr", DATA + 1, VOXEL, overwrite=overwrite)
    if overwrite:
        assert os.listdir(tmp_path) == ["out.zarr"]
        np.testing.assert_array_equal(open_volume(tmp_path / "out.zarr").read(), DATA)
    else:
        assert os.listdir(tmp_path) == []


def test_streaming_zarr_is_renamed_when_complete(tmp_path):
    final = tmp_path / "out.ome.zarr"
    partial = partial_path(final)
    assert partial.parent == tmp_path and partial.name.startswith(".out.ome.zarr.partial-")
    array = create_ome_zarr(partial, (5, 16, 12), "float32", (2, 16, 12), VOXEL, metadata={"k": 1})
    for start in range(0, 5, 2):
        array[start : start + 2] = DATA[start : start + 2]
    assert not final.exists()
    commit_output(partial, final)
    volume = open_volume(final)
    assert volume.voxel_size == pytest.approx(VOXEL) and volume.metadata == {"k": 1}
    np.testing.assert_array_equal(volume.read(), DATA.astype(np.float32))
    assert os.listdir(tmp_path) == ["out.ome.zarr"]
    with pytest.raises(OutputExistsError):
        create_ome_zarr(final, (5, 16, 12), "float32", None, VOXEL)
