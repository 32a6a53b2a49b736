"""Interpolation onto the fine grid: exact at measured rows, local, torch == numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelem.data.interpolation import (
    measured_rows,
    output_length,
    phase_weights,
    upsample,
    upsample_torch,
)
from skelem.errors import ConfigError

METHODS = ["nearest", "linear", "cubic"]


def test_grid_helpers():
    assert output_length(10, 4) == 37
    np.testing.assert_array_equal(measured_rows(37, 4), np.arange(0, 37, 4))
    assert measured_rows(37, 4).size == 10


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("factor", range(2, 17))
def test_exact_at_measured_rows(rng, method, factor):
    data = rng.random((6, 3, 2)).astype(np.float32)
    out = upsample(data, factor, axis=0, method=method)
    assert out.shape == (output_length(6, factor), 3, 2)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[::factor], data)


@pytest.mark.parametrize("method", METHODS)
def test_phase_weights_partition_unity(method):
    weights = phase_weights(5, method)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    np.testing.assert_array_equal(weights[0], [0, 1, 0, 0])


def test_linear_is_exact_on_a_ramp():
    ramp = 2.0 * np.arange(9) + 1.0
    out = upsample(ramp, 4, method="linear")
    np.testing.assert_allclose(out, 2.0 * np.arange(33) / 4 + 1.0, rtol=1e-6)


def test_cubic_reproduces_quadratics_in_the_interior():
    factor, n = 4, 10
    k = np.arange(n, dtype=np.float64)
    quadratic = 0.5 * k**2 - 3 * k + 2
    out = upsample(quadratic, factor, method="cubic")
    t = np.arange(output_length(n, factor)) / factor
    interior = slice(factor, (n - 2) * factor + 1)  # every output row has its 4 taps
    np.testing.assert_allclose(out[interior], (0.5 * t**2 - 3 * t + 2)[interior], atol=1e-5)


def test_nearest_ties_go_to_the_lower_sample():
    out = upsample(np.array([0.0, 1.0]), 4, method="nearest")
    np.testing.assert_array_equal(out, [0, 0, 0, 1, 1])  # phase 2 is a tie -> lower sample


def test_edges_replicate():
    out = upsample(np.array([5.0, 5.0, 1.0]), 2, method="cubic")
    # mid-point of the first interval: x[-1] is replicated from x[0] = 5; x[2] = 1 weighs -1/16
    assert out[1] == pytest.approx(5.0 + (-0.0625) * (1.0 - 5.0))


@pytest.mark.parametrize("method", METHODS)
def test_tiles_with_a_two_sample_halo_match_the_full_result(rng, method):
    factor, halo = 3, 2
    data = rng.random((20, 4, 5)).astype(np.float32)
    full = upsample(data, factor, axis=0, method=method)
    for start, stop in [(0, 7), (5, 12), (11, 20), (2, 18)]:
        lo, hi = max(0, start - halo), min(20, stop + halo)
        tile = upsample(data[lo:hi], factor, axis=0, method=method)
        crop = tile[(start - lo) * factor : (stop - 1 - lo) * factor + 1]
        np.testing.assert_array_equal(crop, full[start * factor : (stop - 1) * factor + 1])


def test_other_axes(rng):
    data = rng.random((3, 4, 6)).astype(np.float32)
    along_x = upsample(data, 4, axis=-1)
    np.testing.assert_array_equal(along_x, np.moveaxis(upsample(np.moveaxis(data, 2, 0), 4), 0, 2))
    single = upsample(data[:1], 4)
    np.testing.assert_array_equal(single, data[:1])


@pytest.mark.parametrize("method", METHODS)
def test_torch_equals_numpy(rng, method):
    batch = rng.random((2, 1, 9, 7)).astype(np.float32)
    expected = upsample(batch, 5, axis=2, method=method)
    got = upsample_torch(torch.from_numpy(batch), 5, dim=-2, method=method)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)
    got_w = upsample_torch(torch.from_numpy(batch), 3, dim=3, method=method)
    np.testing.assert_allclose(
        got_w.numpy(), upsample(batch, 3, axis=3, method=method), rtol=0, atol=1e-6
    )


def test_unknown_method_or_factor():
    with pytest.raises(ConfigError):
        upsample(np.zeros(4), 4, method="bicubic")
    with pytest.raises(ConfigError):
        upsample(np.zeros(4), 2.5)


def _keys_reference(data: np.ndarray, factor: int) -> np.ndarray:
    """Direct Keys (a = -0.5) cubic convolution in float64, one output row at a time."""

    def kernel(d: float) -> float:
        d = abs(d)
        if d <= 1:
            return 1.5 * d**3 - 2.5 * d**2 + 1
        return -0.5 * d**3 + 2.5 * d**2 - 4 * d + 2 if d < 2 else 0.0

    n = data.shape[0]
    out = []
    for row in range(factor * (n - 1) + 1):
        k, t = divmod(row, factor)
        taps = [(kernel(t / factor - j), data[min(max(k + j, 0), n - 1)]) for j in (-1, 0, 1, 2)]
        out.append(sum(w * x for w, x in taps))
    return np.stack(out)


@pytest.mark.parametrize("factor", [2, 3, 8])
def test_cubic_matches_a_direct_keys_reference(rng, factor):
    data = rng.random((7, 3)).astype(np.float32)
    np.testing.assert_allclose(
        upsample(data, factor), _keys_reference(data.astype(np.float64), factor), atol=1e-6
    )
