"""Property-based IO round trips (hypothesis): what ``write_volume`` writes, ``open_volume`` reads.

Random small shapes, data types (uint8, uint16, float32, values over their whole range), voxel
sizes and units, through the TIFF (ImageJ), OME-Zarr (NGFF 0.4 and 0.5), HDF5 and NPY writers:
the data come back bit for bit with their dtype, and the voxel size and unit come back too
(NPY stores none: its voxel size reads back as unknown).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from skelem.io import open_volume, write_volume

# The reliability conftest's autouse fixture (torch on one thread) holds no per-example state;
# each example writes into its own temporary folder (function-scoped tmp_path would be shared).
PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

FORMATS = ("tif", "ome.zarr-0.4", "ome.zarr-0.5", "h5", "npy")
DTYPES = (np.uint8, np.uint16, np.float32)

shapes = st.tuples(
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=20),
    st.integers(min_value=1, max_value=20),
)
# Physical sizes from 1 nm to 100 um in micrometer, or 0.1 nm to 10 um in nanometer.
voxel_sizes = st.tuples(*(st.floats(min_value=1e-3, max_value=100.0) for _ in range(3)))
units = st.sampled_from(["micrometer", "nanometer"])


def _volume(shape: tuple[int, int, int], dtype: type, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4)).astype(dtype)


def _write_and_open(folder: Path, kind: str, data: np.ndarray, voxel, unit: str):
    if kind.startswith("ome.zarr"):
        version = kind.rsplit("-", 1)[1]
        uri = write_volume(folder / "v.ome.zarr", data, voxel, unit=unit, version=version)
    else:
        uri = write_volume(folder / f"v.{kind}", data, voxel, unit=unit)
    return open_volume(uri)


@pytest.mark.parametrize("kind", FORMATS)
@PROPERTY
@example(  # found by CI: 5.12e9 pixels per cm does not fit the TIFF resolution tags' rationals
    shape=(1, 1, 1), dtype=np.uint8, voxel=(1.0, 1.0, 0.001953125), unit="nanometer", seed=0
)
@given(
    shape=shapes,
    dtype=st.sampled_from(DTYPES),
    voxel=voxel_sizes,
    unit=units,
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_write_then_open_gives_back_the_data_and_voxel_size(
    kind: str,
    shape: tuple[int, int, int],
    dtype: type,
    voxel: tuple[float, float, float],
    unit: str,
    seed: int,
) -> None:
    data = _volume(shape, dtype, seed)
    with tempfile.TemporaryDirectory() as folder:
        volume = _write_and_open(Path(folder), kind, data, voxel, unit)
        read = np.asarray(volume.read())
        assert volume.shape == shape
        assert read.dtype == data.dtype
        assert read.tobytes() == data.tobytes()
        if kind == "npy":
            assert volume.voxel_size is None
            return
        assert volume.voxel_size == pytest.approx(voxel, rel=1e-6)
        assert volume.unit == unit


@pytest.mark.parametrize("kind", FORMATS[:-1])
@PROPERTY
@given(shape=shapes, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_an_unknown_voxel_size_stays_unknown(
    kind: str, shape: tuple[int, int, int], dtype: type, seed: int
) -> None:
    """Writing without a voxel size never invents one that looks physical on reading."""
    data = _volume(shape, dtype, seed)
    with tempfile.TemporaryDirectory() as folder:
        volume = _write_and_open(Path(folder), kind, data, None, "micrometer")
        assert np.asarray(volume.read()).tobytes() == data.tobytes()
        assert volume.voxel_size in (None, (1.0, 1.0, 1.0))
