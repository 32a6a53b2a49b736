"""PSNR, SSIM, GMSD, per-orientation evaluation and border cropping on analytic cases."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from skelem.errors import InputError
from skelem.metrics import crop_border, gmsd, per_plane, psnr, ssim

from .volumes import blur_z, smooth_noise


@pytest.fixture
def volume() -> np.ndarray:
    return smooth_noise((32, 36, 40), 1.0, seed=0)


def test_identical_volumes_score_perfectly(volume):
    assert psnr(volume, volume, data_range=1.0) == float("inf")
    for plane in ("xy", "xz", "yz"):
        assert ssim(volume, volume, data_range=8.0, plane=plane) == pytest.approx(1.0)
        assert gmsd(volume, volume, data_range=8.0, plane=plane) == pytest.approx(0.0, abs=1e-12)


def test_psnr_of_a_constant_offset_is_analytic():
    ref = np.zeros((8, 8, 8))
    assert psnr(ref + 0.1, ref, data_range=1.0) == pytest.approx(20.0)
    assert psnr(ref + 0.1, ref, data_range=10.0) == pytest.approx(40.0)


def test_ssim_is_the_mean_of_skimage_gaussian_ssim_over_slices(volume, rng):
    noisy = volume + 0.5 * rng.standard_normal(volume.shape)
    expected = np.mean(
        [
            structural_similarity(
                noisy[:, y],
                volume[:, y],
                data_range=8.0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for y in range(volume.shape[1])
        ]
    )
    assert ssim(noisy, volume, data_range=8.0, plane="xz") == pytest.approx(expected)
    assert ssim(noisy[:, 3], volume[:, 3], data_range=8.0) < 1.0  # 2-D slices work too


def test_ssim_max_slices_samples_evenly_including_the_ends(volume, rng):
    noisy = volume + 0.5 * rng.standard_normal(volume.shape)
    sampled = ssim(noisy, volume, 8.0, plane="xy", max_slices=2)
    ends = np.mean([ssim(noisy[z], volume[z], 8.0) for z in (0, volume.shape[0] - 1)])
    assert sampled == pytest.approx(ends)


def test_gmsd_grows_with_axial_blur(volume):
    mild = gmsd(blur_z(volume, 1.0), volume, data_range=8.0, plane="xz")
    strong = gmsd(blur_z(volume, 3.0), volume, data_range=8.0, plane="xz")
    assert 0.0 < mild < strong
    assert gmsd(volume[:, 5], blur_z(volume, 1.0)[:, 5], data_range=8.0) > 0.0  # 2-D slices


def test_per_plane_evaluates_each_orientation_slice_by_slice(volume, rng):
    noisy = volume + 0.3 * rng.standard_normal(volume.shape)
    scores = per_plane(ssim, noisy, volume, data_range=8.0)
    assert set(scores) == {"xy", "xz", "yz"}
    for plane, value in scores.items():
        assert value == pytest.approx(ssim(noisy, volume, 8.0, plane=plane))
    assert per_plane(psnr, volume, volume, data_range=1.0) == {
        "xy": float("inf"),
        "xz": float("inf"),
        "yz": float("inf"),
    }
    xz_only = per_plane(psnr, noisy, volume, planes=("xz",), data_range=8.0)
    expected = np.mean([psnr(noisy[:, y], volume[:, y], 8.0) for y in range(volume.shape[1])])
    assert xz_only == {"xz": pytest.approx(expected)}


def test_crop_border():
    volume = np.arange(10 * 12 * 14).reshape(10, 12, 14)
    assert crop_border(volume, 2).shape == (6, 8, 10)
    cropped = crop_border(volume, (0, 1, 3))
    np.testing.assert_array_equal(cropped, volume[:, 1:-1, 3:-3])
    with pytest.raises(InputError, match="leaves nothing"):
        crop_border(volume, 5)


def test_bad_inputs_raise_one_sentence_errors(volume):
    with pytest.raises(InputError, match="differ in shape"):
        psnr(volume, volume[:-1], 1.0)
    with pytest.raises(InputError, match="data_range"):
        psnr(volume, volume, 0.0)
    with pytest.raises(InputError, match="NaN"):
        ssim(np.full_like(volume, np.nan), volume, 1.0)
    with pytest.raises(InputError, match="at least 11"):
        ssim(volume[:, :8, :8], volume[:, :8, :8], 1.0)
    with pytest.raises(InputError, match="plane"):
        ssim(volume, volume, 1.0, plane="zz")
