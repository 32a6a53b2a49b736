"""The output grid of an axial restoration: one home for its two rules.

A volume with ``Z`` acquired slices and anisotropy factor ``s`` restores to ``s * (Z - 1) + 1``
slices, and acquired slice ``k`` lands on output row ``k * s`` (a *measured row*). Everything that
needs either rule (planner, engine, prior, metrics, benchmark) asks this module.

It also says which slices of a stack are the neighbours of a slice in a 2.5-D input
(:func:`neighbour_offsets`, :func:`neighbour_indices`; :mod:`skelem.models.context`).
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


def neighbour_offsets(context: int, mirrored: bool = False) -> list[int]:
    """Offsets of the input channels: ``[0, -1, +1, -2, +2, ...]`` (signs swapped if mirrored).

    Parameters
    ----------
    context : int
        Neighbours on each side, ``k >= 0``.
    mirrored : bool
        Swap the two sides (a flip of the stacking axis).

    Returns
    -------
    list of int
    """
    sign = -1 if mirrored else 1
    return [0] + [sign * s * d for d in range(1, int(context) + 1) for s in (-1, 1)]


def neighbour_indices(count: int, context: int) -> np.ndarray:
    """``(count, 2k + 1)`` indices of each slice's channels in a stack of ``count`` slices,
    mirrored at both ends of the stack (without repeating the end slice), clamped when the stack
    is shorter than the context.

    Parameters
    ----------
    count : int
        Slices in the stack.
    context : int
        Neighbours on each side.

    Returns
    -------
    numpy.ndarray of int64
    """
    j = np.arange(count)[:, None] + np.asarray(neighbour_offsets(context))[None, :]
    return _mirrored(j, count)


def mirrored_range(count: int, start: int, stop: int) -> np.ndarray:
    """Indices ``start..stop-1`` into a stack of ``count`` slices, mirrored at its ends as
    :func:`neighbour_indices` does (so a batch can carry the neighbours of its end slices).

    Returns
    -------
    numpy.ndarray of int64
    """
    return _mirrored(np.arange(start, stop), count)


def _mirrored(j: np.ndarray, count: int) -> np.ndarray:
    """Indices ``j`` mirrored into ``0..count-1`` at both ends (end slice not repeated), clamped
    when ``count`` is too short for one reflection."""
    last = count - 1
    return np.clip(last - np.abs(last - np.abs(j)), 0, last)
