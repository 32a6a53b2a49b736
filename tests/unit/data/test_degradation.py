"""The axial degradation model D_s: slice profile along one axis, then every s-th sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelem.config.models import DegradationConfig
from skelem.data.degradation import degrade, degrade_torch, degrade_with, slice_profile_kernel
from skelem.errors import ConfigError, InputError


def test_none_profile_is_plain_subsampling(rng):
    volume = rng.integers(0, 255, size=(20, 5, 6), dtype=np.uint8)
    for offset in range(4):
        out = degrade(volume, 4, axis=0, offset=offset)
        np.testing.assert_array_equal(out, volume[offset::4])
        assert out.dtype == np.uint8
    np.testing.assert_array_equal(degrade(volume, 3, axis=2), volume[:, :, ::3])
    np.testing.assert_array_equal(degrade(volume, 2, axis=-2, offset=1), volume[:, 1::2])


def test_box_kernel_is_centred_with_fractional_edges():
    np.testing.assert_allclose(slice_profile_kernel("box", 4), np.array([1, 2, 2, 2, 1]) / 8)
    np.testing.assert_allclose(slice_profile_kernel("box", 4, thickness=3), np.ones(3) / 3)
    np.testing.assert_allclose(slice_profile_kernel("box", 4, thickness=2.5), [0.3, 0.4, 0.3])
    np.testing.assert_allclose(slice_profile_kernel("box", 4, thickness=0.5), [1.0])
    assert slice_profile_kernel("none", 4) is None


def test_gaussian_kernel_truncated_at_four_sigma():
    kernel = slice_profile_kernel("gaussian", 4, sigma=1.5)
    assert kernel.size == 2 * 6 + 1
    assert kernel.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(kernel, kernel[::-1])
    assert kernel.argmax() == 6


def test_delta_under_box_of_thickness_four():
    delta = np.zeros(33)
    delta[16] = 1.0
    # kernel [1, 2, 2, 2, 1] / 8 centred on row 16 covers rows 14..18
    expected_0 = np.zeros(9)
    expected_0[4] = 0.25  # row 16
    np.testing.assert_array_equal(degrade(delta, 4, profile="box", thickness=4), expected_0)
    expected_2 = np.zeros(8)
    expected_2[3] = expected_2[4] = 0.125  # rows 14 and 18
    np.testing.assert_array_equal(degrade(delta, 4, profile="box", offset=2), expected_2)


@pytest.mark.parametrize(
    ("profile", "params"), [("box", {}), ("box", {"thickness": 2.5}), ("gaussian", {"sigma": 1.5})]
)
def test_ramp_stays_a_ramp_in_the_interior(profile, params):
    ramp = 3.0 * np.arange(60) + 1.0
    radius = slice_profile_kernel(profile, 4, **params).size // 2
    out = degrade(ramp, 4, profile=profile, offset=1, **params)
    kept = np.arange(1, 60, 4)
    interior = (kept >= radius) & (kept < 60 - radius)
    np.testing.assert_allclose(out[interior], ramp[kept[interior]], rtol=1e-12)
    # edges replicate the first sample ('nearest'): the first box sample at row 1 sees
    # rows 0,0,1,2,3
    if profile == "box" and not params:
        assert out[0] == pytest.approx((1 * 1 + 2 * 1 + 2 * 4 + 2 * 7 + 1 * 10) / 8)


@pytest.mark.parametrize("factor", range(2, 17))
def test_every_integer_factor(factor):
    line = np.arange(3 * factor, dtype=np.float32)
    assert degrade(line, factor).tolist() == [0.0, factor, 2.0 * factor]
    assert degrade(line, factor, profile="box").shape == (3,)
    assert degrade(line, factor, profile="gaussian", sigma=factor / 2).shape == (3,)
    assert degrade(line, float(factor)).shape == (3,)


@pytest.mark.parametrize("factor", [2.5, 1, 17, "x"])
def test_bad_factor_raises_config_error(factor):
    with pytest.raises(ConfigError):
        degrade(np.zeros(64), factor)


def test_bad_arguments():
    with pytest.raises(InputError, match="too few"):
        degrade(np.zeros(4), 4)
    with pytest.raises(ConfigError):
        degrade(np.zeros(40), 4, offset=4)
    with pytest.raises(ConfigError):
        degrade(np.zeros(40), 4, profile="gaussian")
    with pytest.raises(ConfigError):
        degrade(np.zeros(40), 4, profile="sinc")
    with pytest.raises(InputError):
        degrade(np.zeros((40, 4)), 4, axis=2)


def test_dtype_of_filtered_output(rng):
    assert (
        degrade(rng.integers(0, 9, (16, 3)).astype(np.uint8), 4, profile="box").dtype == np.float32
    )
    assert degrade(rng.random((16, 3)), 4, profile="box").dtype == np.float64


def test_degrade_with_config(rng):
    volume = rng.random((24, 4, 4)).astype(np.float32)
    cfg = DegradationConfig(factor=4, profile="gaussian", sigma=1.0, offset=3)
    np.testing.assert_array_equal(
        degrade_with(volume, cfg), degrade(volume, 4, profile="gaussian", sigma=1.0, offset=3)
    )


@pytest.mark.parametrize(
    ("profile", "params"),
    [("none", {}), ("box", {}), ("box", {"thickness": 5.5}), ("gaussian", {"sigma": 2.0})],
)
def test_torch_equals_numpy(rng, profile, params):
    batch = rng.random((2, 1, 37, 5)).astype(np.float32)
    expected = degrade(batch, 4, axis=2, profile=profile, offset=2, **params)
    got = degrade_torch(torch.from_numpy(batch), 4, dim=-2, profile=profile, offset=2, **params)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)


def test_torch_is_differentiable(rng):
    x = torch.from_numpy(rng.random((1, 1, 16, 3)).astype(np.float32)).requires_grad_(True)
    degrade_torch(x, 4, profile="box").sum().backward()
    assert x.grad is not None
    assert x.grad.sum().item() == pytest.approx(4 * 3)  # 4 kept rows x 3 columns, weights sum to 1
