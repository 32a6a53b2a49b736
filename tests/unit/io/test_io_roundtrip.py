"""Writing then reading a volume keeps its data, data type and voxel size in every format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import zarr

from skelem.errors import ConfigError
from skelem.io import Volume, open_volume, restored_voxel_size, write_volume

VOXEL = (0.04, 0.004, 0.004)
FORMATS = ["vol.tif", "vol.ome.zarr", "vol.h5:/group/raw", "vol.npy"]


def _volume(dtype: str, rng: np.random.Generator) -> np.ndarray:
    values = rng.integers(0, 200, size=(5, 16, 12))
    return values.astype(dtype) if dtype != "float32" else (values / 7).astype(dtype)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_keeps_data_dtype_and_voxel_size(tmp_path, rng, name, dtype):
    data = _volume(dtype, rng)
    uri = write_volume(tmp_path / name, data, VOXEL, unit="micrometer", metadata={"run": 7})
    volume = open_volume(uri)
    assert volume.shape == (5, 16, 12)
    assert volume.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(volume.read(), data)
    if name.endswith(".npy"):  # NPY has no metadata: the caller gives the voxel size
        assert volume.voxel_size is None and volume.metadata is None
        assert open_volume(uri, voxel_size=VOXEL).voxel_size == VOXEL
    else:
        assert volume.voxel_size == pytest.approx(VOXEL)
        assert volume.unit == "micrometer"
        assert volume.metadata == {"run": 7}


def test_ome_zarr_v05_round_trip_in_nanometer(tmp_path, rng):
    data = _volume("uint16", rng)
    uri = write_volume(tmp_path / "vol.zarr", data, (40, 4, 4), unit="nm", version="0.5")
    attrs = json.loads((tmp_path / "vol.zarr" / "zarr.json").read_text())["attributes"]
    assert attrs["ome"]["version"] == "0.5"
    assert attrs["ome"]["multiscales"][0]["axes"][0] == {
        "name": "z",
        "type": "space",
        "unit": "nanometer",
    }
    volume = open_volume(uri)
    assert volume.voxel_size == (40.0, 4.0, 4.0) and volume.unit == "nanometer"
    np.testing.assert_array_equal(volume.read(), data)


def test_ome_zarr_v04_metadata_follows_ngff(tmp_path, rng):
    write_volume(tmp_path / "vol.ome.zarr", _volume("uint8", rng), VOXEL)
    attrs = json.loads((tmp_path / "vol.ome.zarr" / ".zattrs").read_text())
    multiscale = attrs["multiscales"][0]
    assert multiscale["version"] == "0.4"
    assert [a["name"] for a in multiscale["axes"]] == ["z", "y", "x"]
    assert {a["unit"] for a in multiscale["axes"]} == {"micrometer"}
    assert multiscale["datasets"] == [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": list(VOXEL)}]}
    ]


def test_tiff_is_an_imagej_hyperstack(tmp_path, rng):
    write_volume(tmp_path / "vol.tif", _volume("uint8", rng), VOXEL, metadata={"a": 1})
    with tifffile.TiffFile(tmp_path / "vol.tif") as tif:
        assert tif.is_imagej
        assert tif.imagej_metadata["spacing"] == pytest.approx(0.04)
        assert tif.imagej_metadata["unit"] == "um"
        assert json.loads(tif.imagej_metadata["Info"]) == {"skelem": {"a": 1}}


@pytest.mark.parametrize("dtype", ["uint8", "uint32"])  # an ImageJ hyperstack, a plain TIFF
def test_tiff_resolution_tags_hold_x_and_y_in_their_own_tags(tmp_path, rng, dtype):
    """XResolution is pixels per unit along X, YResolution along Y (as Fiji reads them)."""
    voxel = (0.05, 0.02, 0.01)  # z, y, x: every axis different
    write_volume(tmp_path / "vol.tif", _volume(dtype, rng), voxel)
    with tifffile.TiffFile(tmp_path / "vol.tif") as tif:
        tags = tif.pages[0].tags
        x_num, x_den = tags["XResolution"].value
        y_num, y_den = tags["YResolution"].value
    per_unit = 1.0 if dtype == "uint8" else 1e4  # ImageJ: per micrometer; plain: per centimeter
    assert x_num / x_den == pytest.approx(per_unit / 0.01)
    assert y_num / y_den == pytest.approx(per_unit / 0.02)
    assert open_volume(tmp_path / "vol.tif").voxel_size == pytest.approx(voxel)


@pytest.mark.parametrize("shape", [(1, 8, 8), (4, 8, 1), (1, 1, 1)])
def test_tiff_keeps_single_slice_and_one_pixel_wide_volumes(tmp_path, shape):
    data = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
    write_volume(tmp_path / "vol.tif", data, VOXEL, metadata={"a": 1})
    volume = open_volume(tmp_path / "vol.tif")
    assert volume.shape == shape and np.array_equal(np.asarray(volume.read()), data)
    assert volume.voxel_size == pytest.approx(VOXEL) and volume.metadata == {"a": 1}


def test_hdf5_stores_element_size_um_and_default_dataset(tmp_path, rng):
    import h5py

    uri = write_volume(tmp_path / "vol.h5", _volume("uint8", rng), (40, 4, 4), unit="nanometer")
    assert uri.endswith("vol.h5:/data")
    with h5py.File(tmp_path / "vol.h5", "r") as handle:
        np.testing.assert_allclose(handle["data"].attrs["element_size_um"], [0.04, 0.004, 0.004])


def test_hdf5_element_size_um_from_other_software(tmp_path, rng):
    import h5py

    with h5py.File(tmp_path / "ilastik.h5", "w") as handle:
        handle["exported_data"] = _volume("uint8", rng)
        handle["exported_data"].attrs["element_size_um"] = [0.05, 0.005, 0.005]
    volume = open_volume(f"{tmp_path / 'ilastik.h5'}:/exported_data")
    assert volume.voxel_size == pytest.approx((0.05, 0.005, 0.005))
    assert volume.unit == "micrometer"


def test_float64_and_wide_integer_inputs_are_written(tmp_path, rng):
    data = rng.random((5, 16, 12))
    assert open_volume(write_volume(tmp_path / "f.tif", data, VOXEL)).dtype == np.float32
    assert open_volume(write_volume(tmp_path / "f.h5", data, VOXEL)).dtype == np.float64
    labels = np.arange(5 * 16 * 12, dtype=np.int64).reshape(5, 16, 12)
    volume = open_volume(write_volume(tmp_path / "labels.tif", labels, VOXEL))
    assert volume.dtype == np.uint32 and volume.voxel_size == pytest.approx(VOXEL)
    np.testing.assert_array_equal(volume.read(), labels)


def test_explicit_voxel_size_and_unit_override_the_file(tmp_path, rng):
    uri = write_volume(tmp_path / "vol.zarr", _volume("uint8", rng), VOXEL)
    assert open_volume(uri, voxel_size=(3, 1, 1)).voxel_size == (3.0, 1.0, 1.0)
    override = open_volume(uri, voxel_size=(30, 10, 10), unit="nm")
    assert override.voxel_size == (30.0, 10.0, 10.0) and override.unit == "nanometer"
    converted = open_volume(uri, unit="nm")
    assert converted.voxel_size == pytest.approx((40.0, 4.0, 4.0)) and converted.unit == "nanometer"


def test_anisotropy_factor_from_voxel_size(tmp_path, rng):
    uri = write_volume(tmp_path / "vol.tif", _volume("uint8", rng), (0.05, 0.01, 0.01))
    assert open_volume(uri).anisotropy_factor() == 5
    assert open_volume(uri).anisotropy_factor(3) == 3
    with pytest.raises(ConfigError, match="pass --factor"):
        open_volume(
            write_volume(tmp_path / "vol.npy", _volume("uint8", rng), None)
        ).anisotropy_factor()


def test_restored_voxel_size_divides_z_only():
    assert restored_voxel_size((0.04, 0.01, 0.01), 4) == pytest.approx((0.01, 0.01, 0.01))
    assert restored_voxel_size(None, 4) is None


def test_real_imagej_tiff(shared_data):
    volume = open_volume(shared_data / "fibsem_medulla_t1" / "raw.tif")
    assert volume.shape == (250, 250, 250)
    assert volume.dtype == np.uint8
    assert volume.voxel_size == pytest.approx((0.01, 0.01, 0.01))
    assert volume.unit == "micrometer"
    assert volume.data[100, :2, :2].shape == (2, 2)  # deflate-compressed: read lazily via zarr
    assert not isinstance(volume.data, np.ndarray)


def test_singleton_channel_and_time_axes_are_squeezed(tmp_path, rng):
    data = _volume("uint16", rng)
    tifffile.imwrite(
        tmp_path / "hyper.tif",
        data[None, :, None],
        imagej=True,
        resolution=(100, 100),
        metadata={"axes": "TZCYX", "spacing": 0.03, "unit": "micron"},
    )
    volume = open_volume(tmp_path / "hyper.tif")
    assert volume.shape == (5, 16, 12)
    assert volume.voxel_size == pytest.approx((0.03, 0.01, 0.01)) and volume.unit == "micrometer"
    np.testing.assert_array_equal(volume.read(), data)

    group = zarr.open_group(str(tmp_path / "czyx.zarr"), mode="w", zarr_format=2)
    group.create_array("0", shape=(1, 5, 16, 12), dtype="uint16", chunks=(1, 1, 16, 12))[...] = (
        data[None]
    )
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"
    ]
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": axes,
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": [1, 2, 1, 1]}],
                }
            ],
            "coordinateTransformations": [{"type": "scale", "scale": [1, 0.01, 0.01, 0.01]}],
        }
    ]
    volume = open_volume(tmp_path / "czyx.zarr")
    assert volume.shape == (5, 16, 12)
    assert volume.voxel_size == pytest.approx((0.02, 0.01, 0.01))  # dataset scale x top-level scale
    np.testing.assert_array_equal(volume.data[1:3, 4], data[1:3, 4])
    np.testing.assert_array_equal(volume.read(), data)


def test_ome_zarr_level_and_array_path(tmp_path, rng):
    data = _volume("uint8", rng)
    group = zarr.open_group(str(tmp_path / "pyr.zarr"), mode="w", zarr_format=2)
    group.create_array("s0", shape=data.shape, dtype="uint8")[...] = data
    group.create_array("s1", shape=(5, 8, 6), dtype="uint8")[...] = data[:, ::2, ::2]
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"],
            "datasets": [
                {"path": p, "coordinateTransformations": [{"type": "scale", "scale": s}]}
                for p, s in (("s0", [40, 4, 4]), ("s1", [40, 8, 8]))
            ],
        }
    ]
    level1 = open_volume(tmp_path / "pyr.zarr", level=1)
    assert level1.shape == (5, 8, 6) and level1.voxel_size == (40.0, 8.0, 8.0)
    inner = open_volume(tmp_path / "pyr.zarr" / "s1")  # an array inside the group knows its scale
    assert inner.voxel_size == (40.0, 8.0, 8.0) and inner.unit == "nanometer"
    from skelem.errors import InputError

    with pytest.raises(InputError, match="level 2 does not exist"):
        open_volume(tmp_path / "pyr.zarr", level=2)


def test_volume_from_memory_is_unchanged_by_writing(tmp_path, rng):
    data = _volume("uint8", rng)
    volume = Volume(data=data, voxel_size=VOXEL, source="memory")
    uri = write_volume(tmp_path / "vol.tif", volume, volume.voxel_size)
    np.testing.assert_array_equal(open_volume(uri).read(), data)


@pytest.mark.parametrize("name", FORMATS)
def test_unknown_voxel_size_stays_unknown(tmp_path, rng, name):
    uri = write_volume(tmp_path / name, _volume("uint8", rng), None)
    volume = open_volume(uri)
    assert volume.voxel_size is None
    assert open_volume(uri, voxel_size=(2, 1, 1), unit="um").voxel_size == (2.0, 1.0, 1.0)


def test_imagej_stack_saved_as_channels_is_read_as_z(tmp_path, rng):
    data = _volume("uint8", rng)
    tifffile.imwrite(tmp_path / "stack.tif", data, imagej=True)  # tifffile labels this CYX
    volume = open_volume(tmp_path / "stack.tif")
    np.testing.assert_array_equal(volume.read(), data)
