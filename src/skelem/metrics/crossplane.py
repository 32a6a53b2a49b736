"""Cross-plane artifacts of a volume restored slice by slice.

A restoration built from independent XZ slices (one per ``y``) can disagree from one slice to the
next: in an XY view its errors line up along ``x`` and show as stripes across ``y`` (and the YZ pass
gives stripes across ``x``). Two measures of the METHOD.md claim "the cycle mechanism removes
cross-plane artifacts":

- :func:`pass_disagreement`: how much the XZ pass and the YZ pass of the same volume differ on the
  rows between measured slices (they agree exactly on the measured rows under data consistency);
- :func:`stripe_index`: how much of the error's energy in XY slices sits on the spectrum's axis
  lines (``k_x = 0`` or ``k_y = 0``), relative to the share of frequency bins they hold. 1 for a
  white error; an error whose energy falls with frequency (any smooth error, e.g. cubic
  interpolation's on FIB-SEM: 3-5) reads far above 1 without a single stripe, because the axis
  lines pass through the low frequencies where such an error lives;
- :func:`stripe_excess`: the axis lines' energy against the off-axis energy at the same radial
  frequencies, in windowed spectra: 1 when the error has no more energy on the axes than off
  them, whatever its spectral slope; stripes read above 1.
"""

from __future__ import annotations

import numpy as np

from skelem.errors import InputError

from ._arrays import as_float_pair
from .measured import between_rows


def pass_disagreement(
    xz_pass: np.ndarray, yz_pass: np.ndarray, factor: int, offset: int = 0
) -> float:
    """Root-mean-square difference of two single-plane restorations on the rows in between.

    Parameters
    ----------
    xz_pass, yz_pass : np.ndarray
        The same volume restored from its XZ slices only and from its YZ slices only,
        ``(Z, Y, X)``.
    factor, offset : int
        Anisotropy factor and row of the first measured slice; measured rows are left out.

    Returns
    -------
    float
        RMS difference in intensity units (0 when the two passes agree everywhere).
    """
    a, b = as_float_pair(xz_pass, yz_pass)
    rows = between_rows(a.shape[0], factor, offset)
    return float(np.sqrt(np.mean((a[rows] - b[rows]) ** 2)))


def stripe_index(pred: np.ndarray, ref: np.ndarray, factor: int, offset: int = 0) -> float:
    """Share of the XY error spectrum on the axis lines, relative to the share of frequencies there.

    For every XY slice between measured rows, the error ``pred - ref`` (mean removed) is Fourier
    transformed; the energy on the lines ``k_x = 0`` and ``k_y = 0`` divided by the total energy is
    compared with the fraction of frequency bins those lines hold. A white error gives about 1;
    stripes left by slice-by-slice restoration give more, but so does any error whose energy
    falls with frequency (the lines cross the low frequencies): prefer :func:`stripe_excess`.

    Parameters
    ----------
    pred, ref : np.ndarray
        Restored volume and reference ``(Z, Y, X)`` (XY slices at least 4 x 4).
    factor, offset : int
        Anisotropy factor and row of the first measured slice; measured rows are left out.

    Returns
    -------
    float
        The stripe index (>= 0); ``nan`` when ``pred`` equals ``ref`` on those rows.
    """
    p, r = as_float_pair(pred, ref)
    if p.shape[1] < 4 or p.shape[2] < 4:
        raise InputError(
            f"XY slices of {p.shape[1:]} are too small to measure stripes (need 4 x 4)."
        )
    rows = between_rows(p.shape[0], factor, offset)
    error = p[rows] - r[rows]
    error -= error.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(error, axes=(1, 2))) ** 2
    total = float(power.sum())
    if total == 0.0:
        return float("nan")
    ny, nx = p.shape[1:]
    on_axes = float(power[:, 0, :].sum() + power[:, :, 0].sum() - power[:, 0, 0].sum())
    share_of_bins = (ny + nx - 1) / (ny * nx)
    return (on_axes / total) / share_of_bins


#: :func:`stripe_excess`: axis bins nearer the origin than this (in bins) are left out, and so are
#: the off-axis bins within this many bins of an axis (the Hann window spreads a line into the
#: next bin) when the rings are averaged
EXCESS_SKIP = 3
EXCESS_GUARD = 1


def stripe_excess(pred: np.ndarray, ref: np.ndarray, factor: int, offset: int = 0) -> float:
    """Energy of the XY error spectrum on the axis lines against the same frequencies off them.

    For every XY slice between measured rows, the error ``pred - ref`` (mean removed, Hann
    window in Y and X) is Fourier transformed and the powers are summed over slices. Each bin on
    the lines ``k_x = 0`` and ``k_y = 0`` (at least :data:`EXCESS_SKIP` bins from the origin) is
    compared with the mean power of the off-axis bins in its ring of radial frequency (one bin
    wide, bins within :data:`EXCESS_GUARD` of an axis left out); the result is the axis bins'
    total over what the rings predict. Unlike :func:`stripe_index` it does not depend on how the
    error's energy falls with frequency: an error with no preferred direction reads about 1,
    white or smooth alike; slice-by-slice stripes read above 1.

    Parameters
    ----------
    pred, ref : np.ndarray
        Restored volume and reference ``(Z, Y, X)`` (XY slices at least 16 x 16).
    factor, offset : int
        Anisotropy factor and row of the first measured slice; measured rows are left out.

    Returns
    -------
    float
        The stripe excess (>= 0); ``nan`` when ``pred`` equals ``ref`` on those rows.
    """
    p, r = as_float_pair(pred, ref)
    ny, nx = p.shape[1:]
    if ny < 16 or nx < 16:
        raise InputError(
            f"XY slices of {p.shape[1:]} are too small to compare stripe lines (need 16 x 16)."
        )
    rows = between_rows(p.shape[0], factor, offset)
    error = p[rows] - r[rows]
    error -= error.mean(axis=(1, 2), keepdims=True)
    window = np.hanning(ny)[:, None] * np.hanning(nx)[None, :]
    power = (np.abs(np.fft.fft2(error * window, axes=(1, 2))) ** 2).sum(axis=0)
    by = np.abs(np.fft.fftfreq(ny) * ny)[:, None]  # bin index from the origin
    bx = np.abs(np.fft.fftfreq(nx) * nx)[None, :]
    unit = min(ny, nx)  # rings one bin of the shorter side wide
    ring = np.rint(np.hypot(by / ny, bx / nx) * unit).astype(int)
    on_axis = ((by == 0) | (bx == 0)) & (ring >= EXCESS_SKIP)
    off_axis = (by > EXCESS_GUARD) & (bx > EXCESS_GUARD)
    sums = np.bincount(ring[off_axis], weights=power[off_axis], minlength=ring.max() + 1)
    counts = np.bincount(ring[off_axis], minlength=ring.max() + 1)
    usable = on_axis & (counts[ring] > 0)
    expected = float((sums[ring[usable]] / counts[ring[usable]]).sum())
    if expected == 0.0:
        return float("nan")
    return float(power[usable].sum()) / expected


__all__ = ["pass_disagreement", "stripe_excess", "stripe_index"]
