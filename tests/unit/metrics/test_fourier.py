"""Fourier shell/ring correlation, self-FSC and Z power spectra on analytic cases."""

from __future__ import annotations

import numpy as np
import pytest

from skelem.errors import InputError
from skelem.metrics import (
    frc_z,
    frequency_to_length,
    fsc,
    high_frequency_energy_ratio,
    log_spectral_distance,
    resolution_from_fsc,
    self_fsc,
    spectrum_ratio,
    z_power_spectrum,
)

from .volumes import blur_z, smooth_noise


@pytest.fixture
def volume() -> np.ndarray:
    return smooth_noise((40, 40, 40), 1.0, seed=1)


@pytest.mark.parametrize("axis", [None, "z", "xy"])
def test_fsc_of_identical_volumes_is_one_everywhere(volume, axis):
    freqs, values = fsc(volume, volume, axis=axis)
    assert freqs.shape == values.shape == (20,)
    assert freqs[0] > 0 and freqs[-1] < 0.5
    np.testing.assert_allclose(values, 1.0)


@pytest.mark.parametrize("axis", [None, "z", "xy"])
def test_fsc_of_independent_noise_is_near_zero(axis):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 40, 40, 40))
    _, values = fsc(a, b, axis=axis)
    # The lowest shells of a cone hold only a few frequencies: judge the cones above them.
    assert abs(np.nanmean(values if axis is None else values[4:])) < 0.1
    assert np.nanmax(np.abs(values[5:])) < 0.3


def test_directional_fsc_sees_axial_blur(volume, rng):
    noise = 0.3 * rng.standard_normal(volume.shape)
    blurred = blur_z(volume, 2.0)
    _, along_z = fsc(blurred + noise, volume, axis="z")
    _, along_xy = fsc(blurred + noise, volume, axis="xy")
    assert resolution_from_fsc(np.linspace(0, 0.5, 20), along_z, 0.5) < resolution_from_fsc(
        np.linspace(0, 0.5, 20), along_xy, 0.5
    )


def test_resolution_from_fsc_interpolates_the_first_crossing():
    freqs = np.linspace(0.0, 0.5, 26)
    line = 1.0 - 2.0 * freqs  # crosses 1/7 at (1 - 1/7) / 2
    assert resolution_from_fsc(freqs, line) == pytest.approx(3.0 / 7.0)
    assert resolution_from_fsc(freqs, line, threshold=0.5) == pytest.approx(0.25)
    # The first crossing wins even if the curve comes back up; NaN bins are skipped.
    bumpy = np.where(freqs > 0.3, 1.0, line)
    bumpy[1] = np.nan
    assert resolution_from_fsc(freqs, bumpy, threshold=0.5) == pytest.approx(0.25)
    assert resolution_from_fsc(freqs, np.ones(26)) == 0.5
    assert resolution_from_fsc(freqs, np.zeros(26)) == 0.0


def test_frequency_to_length():
    assert frequency_to_length(0.25, voxel_size=8.0) == pytest.approx(32.0)
    assert frequency_to_length(0.5, voxel_size=4.0) == pytest.approx(8.0)
    assert frequency_to_length(0.0, voxel_size=4.0) == float("inf")


def test_frc_z_summaries(volume, rng):
    perfect = frc_z(volume, volume)
    np.testing.assert_allclose(perfect.values, 1.0)
    assert perfect.auc == pytest.approx(1.0)
    assert perfect.resolution_1_7 == perfect.resolution_half == 0.5
    assert perfect.resolution_length(6.0) == pytest.approx(12.0)

    unrelated = frc_z(rng.standard_normal(volume.shape), volume)
    assert abs(unrelated.auc) < 0.1
    assert unrelated.resolution_1_7 < 0.1

    noisy = frc_z(volume + 0.5 * rng.standard_normal(volume.shape), volume)
    assert 0.1 < noisy.auc < 1.0
    assert noisy.resolution_half < noisy.resolution_1_7 < 0.5
    axial = frc_z(volume, volume, cone_angle=30.0, max_slices=5)
    np.testing.assert_allclose(axial.values[np.isfinite(axial.values)], 1.0)


@pytest.mark.parametrize("split", ["x", "y", "checkerboard"])
def test_self_fsc_halves_of_a_smooth_volume_agree(split):
    smooth = smooth_noise((32, 40, 40), 2.0, seed=3)
    curve = self_fsc(smooth, direction="z", split=split)
    # The one-voxel offset between halves is undone: no loss of correlation along Z.
    assert np.nanmin(curve.values[: len(curve.values) // 2]) > 0.95
    assert curve.resolution_1_7 == 0.5


def test_self_fsc_ranks_axial_against_lateral_resolution(rng):
    axially_blurred = smooth_noise((40, 40, 40), (3.0, 1.0, 1.0), seed=4)
    axially_blurred += 0.1 * rng.standard_normal(axially_blurred.shape)
    along_z = self_fsc(axially_blurred, direction="z")
    along_xy = self_fsc(axially_blurred, direction="xy")
    assert along_z.resolution_1_7 < 0.35 < along_xy.resolution_1_7


def test_z_power_spectrum_of_white_noise_is_flat_at_the_variance(rng):
    freqs, power = z_power_spectrum(rng.standard_normal((64, 32, 32)))
    np.testing.assert_allclose(freqs, np.fft.rfftfreq(64))
    assert power[freqs > 0.05].mean() == pytest.approx(1.0, rel=0.1)


def test_z_power_spectrum_peaks_at_a_sinusoid_frequency():
    z = np.arange(48)[:, None, None]
    freqs, power = z_power_spectrum(np.sin(2 * np.pi * 0.25 * z) * np.ones((48, 4, 4)))
    assert freqs[np.argmax(power)] == pytest.approx(0.25)


def test_spectrum_ratio_of_identical_volumes_is_one(volume):
    freqs, ratio = spectrum_ratio(volume, volume)
    assert freqs.shape == ratio.shape == (21,)
    np.testing.assert_allclose(ratio, 1.0)
    assert log_spectral_distance(volume, volume) == pytest.approx(0.0)
    assert high_frequency_energy_ratio(volume, volume) == pytest.approx(1.0)


def test_blurred_prediction_lacks_high_frequency_energy():
    rough = smooth_noise((40, 32, 32), 0.7, seed=5)
    blurred = blur_z(rough, 1.5)
    assert high_frequency_energy_ratio(blurred, rough) < 0.1
    assert log_spectral_distance(blurred, rough) > 0.5
    assert log_spectral_distance(blur_z(rough, 0.5), rough) < log_spectral_distance(blurred, rough)
    # Excess detail reads as a ratio above 1.
    assert high_frequency_energy_ratio(rough, blurred) > 10.0


def test_fourier_inputs_are_checked(volume):
    with pytest.raises(InputError, match="differ in shape"):
        fsc(volume, volume[1:])
    with pytest.raises(InputError, match="cone_angle"):
        fsc(volume, volume, axis="z", cone_angle=0.0)
    with pytest.raises(InputError, match="direction"):
        fsc(volume, volume, axis="x")
    with pytest.raises(InputError, match="split"):
        self_fsc(volume, split="diagonal")
    with pytest.raises(InputError, match="no Z frequency"):
        log_spectral_distance(volume, volume, fmin=0.6)
