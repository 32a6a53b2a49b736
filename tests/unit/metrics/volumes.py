"""Procedural test volumes for the metrics tests (small, seeded)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def smooth_noise(
    shape: tuple[int, int, int], sigma: float | tuple[float, ...], seed: int
) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation."""
    rng = np.random.default_rng(seed)
    volume = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return volume / volume.std()


def texture(seed: int, size: int = 40) -> np.ndarray:
    """A blobby two-phase texture with fine grain, roughly in [-0.5, 1.5] (a stand-in for EM)."""
    rng = np.random.default_rng(seed)
    shape = (size, size, size)
    phases = (ndimage.gaussian_filter(rng.standard_normal(shape), 1.5) > 0).astype(float)
    grain = ndimage.gaussian_filter(rng.standard_normal(shape), 0.7)
    return phases + 0.3 * grain / grain.std()


def blur_z(volume: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur along Z only (axis 0): an over-smooth axial restoration."""
    return ndimage.gaussian_filter1d(volume, sigma, axis=0)


def two_touching_spheres(size: int = 40, radius: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping spheres split by a membrane plane at x = size/2.

    Returns
    -------
    membrane_prob : np.ndarray
        1 on the spheres' outer shell, on the dividing plane and outside; 0 inside (lightly
        smoothed), shape ``(size, size, size)``.
    labels : np.ndarray
        Ground truth: 1 and 2 for the two halves of the union, 0 outside.
    """
    zz, yy, xx = np.mgrid[:size, :size, :size]
    middle = size / 2
    offset = 0.35 * size
    inside = np.zeros((size, size, size), dtype=bool)
    for centre_x in (middle - offset + radius / 2, middle + offset - radius / 2):
        inside |= (zz - middle) ** 2 + (yy - middle) ** 2 + (xx - centre_x) ** 2 < radius**2
    labels = np.where(inside, np.where(xx < middle - 0.5, 1, 2), 0)
    prob = np.where(inside, 0.0, 1.0)
    prob[inside & (np.abs(xx - (middle - 0.5)) < 1)] = 1.0
    prob[inside ^ ndimage.binary_erosion(inside)] = 1.0
    return ndimage.gaussian_filter(prob, 0.7), labels
