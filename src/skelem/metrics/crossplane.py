"""Cross-plane artifacts of a volume restored slice by slice.

A restoration built from independent XZ slices (one per ``y``) can disagree from one slice to the
next: in an XY view its errors line up along ``x`` and show as stripes across ``y`` (and the YZ pass
gives stripes across ``x``). Two measures of the METHOD.md claim "the cycle mechanism removes
cross-plane artifacts":

- :func:`pass_disagreement`: how much the XZ pass and the YZ pass of the same volume differ on the
  rows between measured slices (they agree exactly on the measured rows under data consistency);
- :func:`stripe_index`: how much of the error's energy in XY slices sits on the spectrum's axis
  lines (``k_x = 0`` or ``k_y = 0``), relative to an error without stripes (1 = no stripes).
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
    compared with the fraction of frequency bins those lines hold. Errors that do not depend on the
    slicing direction give about 1; stripes left by slice-by-slice restoration give more.

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


__all__ = ["pass_disagreement", "stripe_index"]
