"""Opening a volume reads no voxels; reading one slice reads only that slice's chunks."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile
from zarr.storage import LocalStore

from skelem.io import create_ome_zarr, open_volume, write_volume

SHAPE = (64, 256, 256)
METADATA_KEYS = (".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json")


@pytest.fixture
def chunk_reads(monkeypatch) -> list[str]:
    """Keys of the zarr chunks read from local stores while the test runs."""
    reads: list[str] = []
    original = LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        if not key.endswith(METADATA_KEYS):
            reads.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "get", counting_get)
    return reads


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_open_reads_no_chunk(tmp_path, chunk_reads, version):
    path = tmp_path / "big.ome.zarr"
    array = create_ome_zarr(
        path, SHAPE, "uint16", (1, 256, 256), (0.04, 0.01, 0.01), version=version
    )
    array[...] = np.broadcast_to(np.arange(SHAPE[0], dtype=np.uint16)[:, None, None], SHAPE)
    chunk_reads.clear()

    volume = open_volume(path)
    assert volume.shape == SHAPE
    assert chunk_reads == []

    plane = volume.data[17]
    assert (plane == 17).all()
    assert len(chunk_reads) == 1
    separator = "." if version == "0.4" else "/"
    assert chunk_reads[0].endswith(separator.join(["17", "0", "0"]))


def test_hdf5_data_is_the_lazy_dataset(tmp_path):
    data = np.arange(8 * 32 * 32, dtype=np.uint16).reshape(8, 32, 32)
    uri = write_volume(tmp_path / "vol.h5:/raw", data, (0.04, 0.01, 0.01))
    volume = open_volume(uri)
    assert isinstance(volume.data, h5py.Dataset)
    np.testing.assert_array_equal(volume.data[3], data[3])


def test_tiff_is_memory_mapped_or_zarr_backed(tmp_path):
    data = np.arange(8 * 32 * 32, dtype=np.uint16).reshape(8, 32, 32)
    uri = write_volume(tmp_path / "plain.tif", data, (0.04, 0.01, 0.01))
    assert isinstance(open_volume(uri).data, np.memmap)

    tifffile.imwrite(tmp_path / "zipped.tif", data, imagej=True, compression="zlib")
    volume = open_volume(tmp_path / "zipped.tif")
    assert not isinstance(volume.data, np.ndarray)  # compressed: read page by page through zarr
    np.testing.assert_array_equal(volume.data[5], data[5])
    np.testing.assert_array_equal(volume.read(), data)
