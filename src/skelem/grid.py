"""The output grid of an axial restoration: one home for its two rules.

A volume with ``Z`` acquired slices and anisotropy factor ``s`` restores to ``s * (Z - 1) + 1``
slices, and acquired slice ``k`` lands on output row ``k * s`` (a *measured row*). Everything that
needs either rule (planner, engine, prior, metrics, benchmark) asks this module.
"""

from __future__ import annotations

import numpy as np


def restored_length(acquired: int, factor: int) -> int:
    """Number of output slices for ``acquired`` slices: ``factor * (acquired - 1) + 1``.

    Parameters
    ----------
    acquired : int
        Slices along Z in the anisotropic input (at least 1).
    factor : int
        Integer anisotropy factor.

    Returns
    -------
    int
        The restored number of slices.
    """
    return int(factor) * (int(acquired) - 1) + 1


def restored_shape(shape: tuple[int, int, int], factor: int) -> tuple[int, int, int]:
    """Output shape ``(s*(Z-1)+1, Y, X)`` of an input of shape ``(Z, Y, X)``.

    Parameters
    ----------
    shape : tuple of int
        Input shape ``(Z, Y, X)``.
    factor : int
        Integer anisotropy factor.

    Returns
    -------
    tuple of int
        The restored shape; Y and X are unchanged.
    """
    z, y, x = (int(v) for v in shape)
    return (restored_length(z, factor), y, x)


def measured_rows(rows: int, factor: int, first_row: int = 0) -> np.ndarray:
    """Boolean ``(rows,)`` mask of measured output rows in a window.

    Parameters
    ----------
    rows : int
        Window height in output rows.
    factor : int
        Integer anisotropy factor (at least 1).
    first_row : int
        Global output row of the window's row 0; local row ``r`` is measured when
        ``(first_row + r) % factor == 0``.

    Returns
    -------
    numpy.ndarray of bool
        True at the local rows that hold an acquired slice.
    """
    if factor < 1:
        raise ValueError(f"factor must be positive, got {factor}")
    return (int(first_row) + np.arange(int(rows))) % int(factor) == 0
