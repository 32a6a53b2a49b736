"""Percentile normalisation: fit on strided samples of a lazy volume, exact round trips."""

from __future__ import annotations

import numpy as np
import pytest

from skelem.data.normalize import PercentileNormalizer
from skelem.errors import InputError


class CountingArray:
    """A lazy array stand-in that records how many voxels were read."""

    def __init__(self, data: np.ndarray) -> None:
        self.data_ = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.voxels_read = 0

    def __getitem__(self, key):
        out = np.asarray(self.data_[key])
        self.voxels_read += out.size
        return out


class VolumeLike:
    """Like ``skelem.io.Volume``: not indexable itself, carries its array in ``.data``."""

    def __init__(self, data) -> None:
        self.data = data

    @property
    def shape(self):
        return self.data.shape


def test_fit_on_known_values():
    norm = PercentileNormalizer.fit(np.arange(1001.0), percentiles=(0, 100))
    assert (norm.low, norm.high) == (0.0, 1000.0)
    norm = PercentileNormalizer.fit(np.arange(1001.0), percentiles=(10, 90))
    assert (norm.low, norm.high) == pytest.approx((100.0, 900.0))
    volume = np.arange(1000.0).reshape(10, 10, 10)
    assert PercentileNormalizer.fit(volume, percentiles=(0, 100)) == PercentileNormalizer(
        0.0, 999.0, (0.0, 100.0)
    )


def test_normalize_and_denormalize(rng):
    volume = rng.integers(0, 65535, size=(8, 16, 16), dtype=np.uint16)
    norm = PercentileNormalizer.fit(volume)
    y = norm.normalize(volume)
    assert y.dtype == np.float32
    assert np.percentile(y, 0.5) == pytest.approx(0.0, abs=1e-3)
    assert np.percentile(y, 99.5) == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_array_equal(norm.denormalize(y, np.uint16), volume)
    assert norm.denormalize(y).dtype == np.float32


def test_denormalize_rounds_and_clips_into_integer_range():
    norm = PercentileNormalizer(0.0, 255.0)
    out = norm.denormalize(np.array([-0.5, 0.1, 0.502, 2.0]), np.uint8)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 26, 128, 255])


def test_constant_volume_is_refused():
    with pytest.raises(InputError, match="constant intensity"):
        PercentileNormalizer.fit(np.full((4, 8, 8), 7, dtype=np.uint8))
    with pytest.raises(InputError, match="constant intensity"):
        PercentileNormalizer(3.0, 3.0)


def test_sparse_volume_falls_back_to_min_max():
    volume = np.zeros((10, 20, 20), dtype=np.uint8)
    volume[5, 10, 10] = 200
    norm = PercentileNormalizer.fit(volume)
    assert (norm.low, norm.high) == (0.0, 200.0)


def test_lazy_volume_is_subsampled_not_read_whole(rng):
    data = rng.normal(100, 10, size=(40, 64, 64)).astype(np.float32)
    lazy = CountingArray(data)
    norm = PercentileNormalizer.fit(lazy, max_samples=5_000)
    assert 1_000 < lazy.voxels_read <= 5_000
    reference = PercentileNormalizer.fit(data, max_samples=data.size)
    assert norm.low == pytest.approx(reference.low, rel=0.02)
    assert norm.high == pytest.approx(reference.high, rel=0.02)
    assert PercentileNormalizer.fit(data, max_samples=5_000) == norm  # deterministic given the seed
    assert PercentileNormalizer.fit(VolumeLike(lazy), max_samples=5_000) == norm


def test_dict_round_trip():
    norm = PercentileNormalizer(12.5, 240.0, (1.0, 99.0))
    assert PercentileNormalizer.from_dict(norm.to_dict()) == norm
    assert PercentileNormalizer.from_dict({"low": 1, "high": 2}) == PercentileNormalizer(1.0, 2.0)
    with pytest.raises(ValueError):
        PercentileNormalizer.from_dict({"low": 2, "high": 2})
    with pytest.raises(KeyError):
        PercentileNormalizer.from_dict({"low": 2})
