"""Errors on the measured (acquired) rows and on the rows in between.

A volume with ``Z`` acquired slices restores to ``s * (Z - 1) + 1`` slices and acquired slice
``k`` lands on output row ``offset + k * s`` ("measured rows"; both rules live in
:mod:`skelem.grid`). SkelEM promises to reproduce the measured rows; the rows in between are
what it invents, so their error against an isotropic reference measures fidelity (and
hallucination) where it matters.
"""

from __future__ import annotations

import numpy as np

from skelem.config.models import check_factor
from skelem.errors import InputError
from skelem.grid import measured_rows, restored_length

from ._arrays import as_float_array, as_float_pair, check_data_range


def _check_rows(n_rows: int, factor: int, offset: int) -> int:
    factor = int(check_factor(factor))
    if not 0 <= offset < factor:
        raise InputError(f"offset must lie in [0, {factor}), got {offset}.")
    if offset >= n_rows:
        raise InputError(f"offset {offset} lies beyond the {n_rows} rows of the prediction.")
    return factor


def between_rows(n_rows: int, factor: int, offset: int = 0) -> np.ndarray:
    """Indices of the rows between measured rows (``offset, offset + s, ...`` are measured).

    Parameters
    ----------
    n_rows : int
        Rows of the restored volume.
    factor : int
        Anisotropy factor ``s`` (integer 2..16).
    offset : int
        Row of the first measured slice, in ``[0, s)``.

    Returns
    -------
    np.ndarray of int
        Row indices, increasing.

    Raises
    ------
    InputError
        When the factor or offset is invalid or no row lies between measured rows.
    """
    factor = _check_rows(n_rows, factor, offset)
    rows = np.nonzero(~measured_rows(n_rows, factor, first_row=-offset))[0]
    if rows.size == 0:
        raise InputError(f"a volume of {n_rows} rows has no row between measured rows.")
    return rows


def measured_slice_error(
    pred: np.ndarray, acquired: np.ndarray, factor: int, offset: int = 0
) -> dict[str, float]:
    """Compare the measured rows of a restored volume with the acquired slices.

    Parameters
    ----------
    pred : np.ndarray
        Restored volume ``(Zp, Y, X)`` with ``Zp >= offset + factor * (Za - 1) + 1``.
    acquired : np.ndarray
        Acquired slices ``(Za, Y, X)`` in the same intensity units.
    factor : int
        Anisotropy factor ``s`` (integer 2..16).
    offset : int
        Row of the first acquired slice (default 0).

    Returns
    -------
    dict
        ``{"max_abs": ..., "mae": ...}``: largest and mean absolute difference over the measured
        rows, in intensity units (both 0 when the rows reproduce the acquisition exactly).
    """
    pred64 = as_float_array(pred, "the prediction")
    acquired64 = as_float_array(acquired, "the acquired volume")
    factor = _check_rows(pred64.shape[0], factor, offset)
    n_acquired = acquired64.shape[0]
    needed = offset + restored_length(n_acquired, factor)
    if pred64.shape[1:] != acquired64.shape[1:] or pred64.shape[0] < needed:
        raise InputError(
            f"a prediction of shape {pred64.shape} cannot hold {n_acquired} acquired slices of "
            f"{acquired64.shape[1:]} at factor {factor} and offset {offset} "
            f"(needs at least {needed} rows)."
        )
    rows = np.nonzero(measured_rows(needed, factor, first_row=-offset))[0]
    difference = np.abs(pred64[rows] - acquired64)
    return {"max_abs": float(difference.max()), "mae": float(difference.mean())}


def between_slice_error(
    pred: np.ndarray,
    ref: np.ndarray,
    factor: int,
    offset: int = 0,
    data_range: float | None = None,
) -> dict[str, float]:
    """Error of a restored volume against an isotropic reference on the non-measured rows.

    Parameters
    ----------
    pred, ref : np.ndarray
        Restored volume and isotropic reference ``(Z, Y, X)`` of the same shape.
    factor : int
        Anisotropy factor ``s``; the measured rows are ``offset, offset + s, ...``.
    offset : int
        Row of the first measured slice (default 0).
    data_range : float, optional
        Span of the intensity scale for the PSNR; default ``ref.max() - ref.min()``.

    Returns
    -------
    dict
        ``{"mae": ..., "psnr": ...}`` over the rows in between: mean absolute error in intensity
        units and PSNR in dB (``inf`` when they match exactly).
    """
    pred64, ref64 = as_float_pair(pred, ref)
    rows = between_rows(pred64.shape[0], factor, offset)
    if data_range is None:
        data_range = float(ref64.max() - ref64.min()) or 1.0
    data_range = check_data_range(data_range)
    difference = pred64[rows] - ref64[rows]
    mse = float(np.mean(difference**2))
    psnr = float("inf") if mse == 0.0 else float(10.0 * np.log10(data_range**2 / mse))
    return {"mae": float(np.mean(np.abs(difference))), "psnr": psnr}


__all__ = ["between_slice_error", "measured_slice_error"]
