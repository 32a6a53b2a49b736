"""Z power spectra of restored volumes and their comparison with a reference.

Frequencies are normalised (cycles per voxel, 0 to 0.5), as in :mod:`.fourier`; each volume has its
mean removed and a window along Z before the transform.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sp_fft

from skelem.errors import InputError

from ._arrays import as_float_array, as_float_pair
from .fourier import NYQUIST, Window, _window_1d


def z_power_spectrum(
    vol: np.ndarray, window: Window = "hann", chunk_rows: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrum along Z, averaged over all (Y, X) columns.

    Each column has its mean removed and is multiplied by a window (Hann by default) before a
    real FFT along Z; the power ``|F|² / Σ w²`` is averaged over columns.

    Parameters
    ----------
    vol : np.ndarray
        Volume ``(Z, Y, X)``, at least 4 slices.
    window : {"hann", "tukey", None}
        Window along Z.
    chunk_rows : int
        Y rows processed at a time (bounds memory).

    Returns
    -------
    freqs : np.ndarray
        ``rfftfreq(Z)`` in cycles/voxel, shape ``(Z // 2 + 1,)``.
    power : np.ndarray
        Mean power per frequency in intensity² per voxel, same shape.
    """
    vol64 = as_float_array(vol, "the volume")
    nz, ny, nx = vol64.shape
    if nz < 4:
        raise InputError(f"a Z power spectrum needs at least 4 slices, got {nz}.")
    taper = _window_1d(nz, window)[:, None, None]
    total = np.zeros(nz // 2 + 1)
    for y0 in range(0, ny, chunk_rows):
        block = vol64[:, y0 : y0 + chunk_rows]
        block = (block - block.mean(axis=0, keepdims=True)) * taper
        spectrum = sp_fft.rfft(block, axis=0)
        total += (spectrum.real**2 + spectrum.imag**2).sum(axis=(1, 2))
    power = total / (ny * nx) / float(np.sum(taper**2))
    return np.fft.rfftfreq(nz), power


def spectrum_ratio(
    pred: np.ndarray, ref: np.ndarray, window: Window = "hann"
) -> tuple[np.ndarray, np.ndarray]:
    """Ratio of the Z power spectra of a prediction and a reference (see :func:`z_power_spectrum`).

    Parameters
    ----------
    pred, ref : np.ndarray
        Prediction and reference ``(Z, Y, X)`` of one shape.
    window : {"hann", "tukey", None}
        Apodisation along Z.

    Returns
    -------
    freqs : np.ndarray
        Cycles/voxel, shape ``(Z // 2 + 1,)``.
    ratio : np.ndarray
        ``P_pred / P_ref`` per frequency (1 where they agree, < 1 where the prediction lacks
        energy). A tiny floor (1e-12 of the largest power) keeps empty bins finite.
    """
    pred64, ref64 = as_float_pair(pred, ref)
    freqs, power_pred = z_power_spectrum(pred64, window)
    _, power_ref = z_power_spectrum(ref64, window)
    floor = 1e-12 * max(float(power_pred.max()), float(power_ref.max()), np.finfo(float).tiny)
    return freqs, (power_pred + floor) / (power_ref + floor)


def _band(freqs: np.ndarray, fmin: float, fmax: float) -> np.ndarray:
    band = (freqs >= fmin) & (freqs <= fmax)
    if not band.any():
        raise InputError(f"no Z frequency lies in [{fmin}, {fmax}] cycles/voxel.")
    return band


def log_spectral_distance(
    pred: np.ndarray,
    ref: np.ndarray,
    fmin: float = 1.0 / 32.0,
    fmax: float = NYQUIST,
    window: Window = "hann",
) -> float:
    """RMS of ``log10(P_pred / P_ref)`` over Z frequencies in ``[fmin, fmax]``.

    0 when the Z power spectra agree; 1 means an average factor 10 in power. ``fmin``
    (default 1/32 cycles/voxel, periods of 32 voxels or less) leaves out the lowest bins, which
    the window and the mean removal dominate.

    Parameters
    ----------
    pred, ref : np.ndarray
        Volumes ``(Z, Y, X)`` of the same shape.
    fmin, fmax : float
        Band in cycles/voxel.
    window : {"hann", "tukey", None}
        Window along Z.

    Returns
    -------
    float
        Non-negative distance in decades (log10 units); the closer to 0 the better.
    """
    freqs, ratio = spectrum_ratio(pred, ref, window)
    band = _band(freqs, fmin, fmax)
    return float(np.sqrt(np.mean(np.log10(ratio[band]) ** 2)))


def high_frequency_energy_ratio(
    pred: np.ndarray,
    ref: np.ndarray,
    band: tuple[float, float] = (0.25, NYQUIST),
    window: Window = "hann",
) -> float:
    """Z power of the prediction over that of the reference within a high-frequency band.

    Parameters
    ----------
    pred, ref : np.ndarray
        Volumes ``(Z, Y, X)`` of the same shape.
    band : (float, float)
        Frequency band in cycles/voxel, inclusive (default 0.25-0.5: periods of 2-4 voxels).
    window : {"hann", "tukey", None}
        Window along Z.

    Returns
    -------
    float
        ``Σ P_pred / Σ P_ref`` over the band: 1 for matching detail, < 1 for an over-smooth
        prediction, > 1 for excess (e.g. hallucinated or noisy) detail.
    """
    pred64, ref64 = as_float_pair(pred, ref)
    freqs, power_pred = z_power_spectrum(pred64, window)
    _, power_ref = z_power_spectrum(ref64, window)
    selected = _band(freqs, *band)
    ref_energy = float(power_ref[selected].sum())
    if ref_energy == 0.0:
        return float("inf") if power_pred[selected].sum() > 0 else 1.0
    return float(power_pred[selected].sum() / ref_energy)


__all__ = [
    "high_frequency_energy_ratio",
    "log_spectral_distance",
    "spectrum_ratio",
    "z_power_spectrum",
]
