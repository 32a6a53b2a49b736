"""The reader opens SkelEM's formats with their voxel size; the sample is a x4 FIB-SEM stack."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("napari", reason="napari is not installed (pip install 'skelem[napari]')")

from skelem.io import write_volume  # noqa: E402
from skelem.napari import _reader  # noqa: E402
from skelem.napari._reader import get_reader  # noqa: E402
from skelem.napari._sample import fibsem_x4  # noqa: E402

VOXEL = (0.05, 0.01, 0.01)


@pytest.fixture
def volume(rng) -> np.ndarray:
    return rng.integers(0, 255, size=(6, 20, 24), dtype=np.uint8)


def test_tiff_and_npy_open_with_their_voxel_size(tmp_path, volume):
    tif = tmp_path / "stack.tif"
    write_volume(tif, volume, VOXEL)
    np.save(tmp_path / "stack.npy", volume)
    [(data, kwargs, kind)] = get_reader(str(tif))(str(tif))
    assert kind == "image" and kwargs["name"] == "stack"
    np.testing.assert_array_equal(np.asarray(data), volume)
    np.testing.assert_allclose(kwargs["scale"], VOXEL)
    assert kwargs["units"] == ("micrometer",) * 3
    [(data, kwargs, _)] = get_reader(str(tmp_path / "stack.npy"))(str(tmp_path / "stack.npy"))
    np.testing.assert_array_equal(np.asarray(data), volume)
    assert "scale" not in kwargs  # NPY carries no voxel size


def test_hdf5_dataset_uri_and_whole_file(tmp_path, volume):
    import h5py

    path = tmp_path / "vol.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("raw/em", data=volume).attrs["element_size_um"] = VOXEL
        handle.create_dataset("flat", data=volume[0])  # 2-D: not offered
    [(data, kwargs, _)] = get_reader(f"{path}:/raw/em")(f"{path}:/raw/em")
    np.testing.assert_array_equal(np.asarray(data[2:4]), volume[2:4])  # lazily read
    np.testing.assert_allclose(kwargs["scale"], VOXEL)
    layers = get_reader(str(path))(str(path))
    assert [kw["name"] for _, kw, _ in layers] == ["em"]


def test_reader_declines_other_files_and_defers_ome_zarr(tmp_path, monkeypatch):
    assert get_reader(str(tmp_path / "picture.png")) is None
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        _reader.importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "napari_ome_zarr" else real_find_spec(name, *a),
    )
    assert get_reader(str(tmp_path / "out.ome.zarr")) is None
    monkeypatch.setattr(_reader.importlib.util, "find_spec", lambda name, *a: None)
    assert get_reader(str(tmp_path / "out.ome.zarr")) is _reader.read_layers


def test_sample_is_every_fourth_slice_at_40_nm():
    [(data, kwargs, _)] = fibsem_x4()
    assert data.shape == (25, 125, 160) and data.dtype == np.uint8
    np.testing.assert_allclose(kwargs["scale"], (0.04, 0.01, 0.01))
    assert "Takemura" in kwargs["metadata"]["attribution"]


def test_viewer_opens_files_and_sample_through_the_plugin(viewer, tmp_path, volume):
    tif = tmp_path / "stack.tif"
    write_volume(tif, volume, VOXEL)
    [layer] = viewer.open(str(tif), plugin="skelem")
    np.testing.assert_allclose(layer.scale, VOXEL)
    [sample] = viewer.open_sample("skelem", "fibsem_x4")
    assert sample.data.shape == (25, 125, 160)
    np.testing.assert_allclose(sample.scale, (0.04, 0.01, 0.01))
