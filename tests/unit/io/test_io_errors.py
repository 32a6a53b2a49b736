"""Every unusable input raises InputError with one readable sentence."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile

from skelem.errors import InputError
from skelem.io import check_finite, open_volume, validate_volume
from skelem.io.validate import intensity_range


def _one_sentence(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert message.endswith(".") and "\n" not in message
    assert "Traceback" not in message
    return message


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="does not exist") as err:
        open_volume(tmp_path / "nope.tif")
    _one_sentence(err)
    with pytest.raises(InputError, match=r"nope\.h5 does not exist"):
        open_volume(f"{tmp_path / 'nope.h5'}:/raw")


def test_unknown_extension(tmp_path):
    (tmp_path / "vol.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match=r"unsupported format \(\.png\)") as err:
        open_volume(tmp_path / "vol.png")
    _one_sentence(err)


@pytest.fixture
def h5_file(tmp_path):
    path = tmp_path / "vol.h5"
    with h5py.File(path, "w") as handle:
        handle["volumes/raw"] = np.zeros((4, 8, 8), np.uint8)
        handle["volumes/labels"] = np.zeros((4, 8, 8), np.uint32)
    return path


def test_hdf5_without_dataset_lists_datasets(h5_file):
    with pytest.raises(InputError, match="/volumes/raw") as err:
        open_volume(h5_file)
    assert "name the dataset" in _one_sentence(err)


def test_hdf5_missing_dataset_and_group(h5_file):
    with pytest.raises(InputError, match="has no dataset /volumes/nope") as err:
        open_volume(f"{h5_file}:/volumes/nope")
    _one_sentence(err)
    with pytest.raises(InputError, match="is an HDF5 group, not a dataset") as err:
        open_volume(f"{h5_file}:/volumes")
    assert "/volumes/labels" in _one_sentence(err)


@pytest.mark.parametrize("name", ["x.tif", "x.h5", "x.npy"])
def test_corrupt_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not an image at all" * 10)
    uri = f"{tmp_path / name}:/raw" if name.endswith(".h5") else tmp_path / name
    with pytest.raises(InputError, match=r"x\.(tif|h5|npy) could not be read") as err:
        open_volume(uri)
    _one_sentence(err)


def test_corrupt_zarr_metadata(tmp_path):
    (tmp_path / "x.zarr").mkdir()
    (tmp_path / "x.zarr" / ".zattrs").write_text("{not json")
    (tmp_path / "x.zarr" / ".zgroup").write_text("{not json")
    with pytest.raises(InputError, match="could not be read"):
        open_volume(tmp_path / "x.zarr")


@pytest.mark.parametrize("shape", [(16, 12), (2, 5, 16, 12)])
def test_not_three_dimensional(tmp_path, shape):
    np.save(tmp_path / "x.npy", np.zeros(shape, np.uint8))
    with pytest.raises(InputError, match=r"a \(Z, Y, X\) volume is needed") as err:
        open_volume(tmp_path / "x.npy")
    assert str(shape) in _one_sentence(err)


def test_multichannel_tiff_names_the_axes(tmp_path):
    tifffile.imwrite(
        tmp_path / "c.tif", np.zeros((5, 2, 8, 8), np.uint8), imagej=True, metadata={"axes": "ZCYX"}
    )
    with pytest.raises(InputError, match="axes ZCYX") as err:
        open_volume(tmp_path / "c.tif")
    _one_sentence(err)


@pytest.mark.parametrize("dtype", [np.complex64, np.bool_])
def test_unsupported_dtype(tmp_path, dtype):
    np.save(tmp_path / "x.npy", np.zeros((3, 4, 4), dtype))
    with pytest.raises(InputError, match="data type") as err:
        open_volume(tmp_path / "x.npy")
    _one_sentence(err)


def test_bad_voxel_size_and_unit(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(InputError, match="positive"):
        open_volume(tmp_path / "x.npy", voxel_size=(0, 1, 1))
    with pytest.raises(InputError, match="three values"):
        open_volume(tmp_path / "x.npy", voxel_size=(1, 1))
    with pytest.raises(InputError, match="Unknown length unit"):
        open_volume(tmp_path / "x.npy", voxel_size=(1, 1, 1), unit="furlong")


def test_check_finite_names_the_first_bad_slice(tmp_path):
    data = np.zeros((9, 6, 5), np.float32)
    data[6, 2, 3] = np.nan
    data[8, 0, 0] = np.inf
    np.save(tmp_path / "x.npy", data)
    volume = open_volume(tmp_path / "x.npy")  # opening does not scan the values
    with pytest.raises(InputError, match=r"NaN or infinite values \(first at slice z=6\)") as err:
        check_finite(volume, chunk_slices=2)
    assert str(tmp_path / "x.npy") in _one_sentence(err)
    check_finite(np.zeros((3, 4, 4), np.float32))
    check_finite(np.zeros((3, 4, 4), np.uint8))


def test_validate_volume_messages():
    with pytest.raises(InputError, match="2 slice"):
        validate_volume(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(InputError, match="at least 16x16"):
        validate_volume(np.zeros((4, 8, 8), np.uint8), min_lateral=16)
    with pytest.raises(InputError, match="data type"):
        validate_volume(np.zeros((4, 8, 8), np.complex64))
    with pytest.raises(InputError, match="NaN"):
        validate_volume(np.full((4, 8, 8), np.nan, np.float32))
    volume = validate_volume(np.ones((4, 8, 8), np.float32), min_slices=3, min_lateral=8)
    assert volume.shape == (4, 8, 8)


def test_intensity_range_ignores_non_finite():
    data = np.arange(4 * 3 * 3, dtype=np.float32).reshape(4, 3, 3)
    data[0, 0, 0] = np.nan
    assert intensity_range(data, chunk_slices=1) == (1.0, 35.0)
