"""TIFF outputs open in Fiji as calibrated hyperstacks: ImageJ metadata read back with tifffile."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from skelem.io import open_volume, restored_voxel_size, write_volume


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_restored_tiff_is_a_calibrated_imagej_hyperstack(tmp_path, rng, dtype):
    acquired_voxel = (0.032, 0.008, 0.008)  # micrometer, x4 anisotropic
    voxel = restored_voxel_size(acquired_voxel, 4)
    volume = (rng.random((13, 24, 20)) * 200).astype(dtype)
    path = write_volume(tmp_path / "iso.tif", volume, voxel, "micrometer", metadata={"seed": 0})
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        meta = tif.imagej_metadata
        assert meta["images"] == meta["slices"] == 13 and meta["hyperstack"] is True
        assert "channels" not in meta and "frames" not in meta
        assert meta["spacing"] == pytest.approx(0.008)  # Z step of the isotropic grid
        assert meta["unit"] == "um"  # Fiji shows micron
        page = tif.pages[0]
        x_per_unit = page.tags["XResolution"].value
        y_per_unit = page.tags["YResolution"].value
        assert x_per_unit[0] / x_per_unit[1] == pytest.approx(1 / 0.008)
        assert y_per_unit[0] / y_per_unit[1] == pytest.approx(1 / 0.008)
        assert tif.series[0].axes == "ZYX" and tif.series[0].shape == (13, 24, 20)
        if dtype == "float32":  # the display range of the whole stack
            assert meta["min"] == pytest.approx(float(volume.min()))
            assert meta["max"] == pytest.approx(float(volume.max()))
    back = open_volume(path)
    assert back.voxel_size == pytest.approx(voxel) and back.unit == "micrometer"
    np.testing.assert_array_equal(back.read(), volume)


def test_nanometer_voxel_size_keeps_its_unit(tmp_path, rng):
    path = write_volume(tmp_path / "nm.tif", rng.random((3, 8, 8)), (4.0, 4.0, 4.0), "nm")
    with tifffile.TiffFile(path) as tif:
        assert tif.imagej_metadata["unit"] == "nm"
        assert tif.imagej_metadata["spacing"] == pytest.approx(4.0)
