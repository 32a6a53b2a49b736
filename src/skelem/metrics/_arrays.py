"""Shared input checks and slicing helpers for :mod:`skelem.metrics` (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from skelem.errors import InputError

Plane = Literal["xy", "xz", "yz"]

#: Axis of a ``(Z, Y, X)`` volume that indexes the slices of each orientation.
#: ``"xy"`` slices are ``vol[z]`` (shape ``(Y, X)``), ``"xz"`` slices are ``vol[:, y]``
#: (shape ``(Z, X)``) and ``"yz"`` slices are ``vol[:, :, x]`` (shape ``(Z, Y)``). In XZ and YZ
#: slices the rows (first axis) are Z.
PLANE_AXIS: dict[str, int] = {"xy": 0, "xz": 1, "yz": 2}


def as_float_array(array: np.ndarray, name: str, ndims: Sequence[int] = (3,)) -> np.ndarray:
    """Return ``array`` as a finite float64 array with one of the allowed dimensionalities.

    Raises
    ------
    InputError
        When the dimensionality is wrong or the array holds NaN or infinite values.
    """
    out = np.asarray(array, dtype=np.float64)
    if out.ndim not in ndims:
        allowed = " or ".join(f"{n}-D" for n in ndims)
        raise InputError(f"{name} must be {allowed}, got an array of shape {out.shape}.")
    if not np.all(np.isfinite(out)):
        raise InputError(f"{name} contains NaN or infinite values.")
    return out


def as_float_pair(
    pred: np.ndarray, ref: np.ndarray, ndims: Sequence[int] = (3,)
) -> tuple[np.ndarray, np.ndarray]:
    """Check that ``pred`` and ``ref`` are finite arrays of one shape; return them as float64."""
    pred64 = as_float_array(pred, "the prediction", ndims)
    ref64 = as_float_array(ref, "the reference", ndims)
    if pred64.shape != ref64.shape:
        raise InputError(
            f"the prediction {pred64.shape} and the reference {ref64.shape} differ in shape."
        )
    return pred64, ref64


def check_data_range(data_range: float) -> float:
    """Return ``data_range`` as a positive float (raises :class:`InputError` otherwise)."""
    value = float(data_range)
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"data_range must be a positive number, got {data_range}.")
    return value


def check_plane(plane: str) -> int:
    """Return the slicing axis of ``plane`` (``"xy"``, ``"xz"`` or ``"yz"``)."""
    if plane not in PLANE_AXIS:
        raise InputError(f"plane must be one of 'xy', 'xz', 'yz', got {plane!r}.")
    return PLANE_AXIS[plane]


def slice_indices(n_slices: int, max_slices: int | None) -> np.ndarray:
    """Indices of the slices to evaluate: all of them, or ``max_slices`` evenly spaced ones.

    The evenly spaced subset always contains the first and the last slice and is deterministic.
    """
    if max_slices is None or max_slices >= n_slices:
        return np.arange(n_slices)
    if max_slices < 1:
        raise InputError(f"max_slices must be at least 1, got {max_slices}.")
    return np.unique(np.round(np.linspace(0, n_slices - 1, max_slices)).astype(np.int64))


def plane_stack(volume: np.ndarray, plane: str) -> np.ndarray:
    """View of ``volume`` as a stack of 2-D slices of ``plane``, slice index first.

    Returns shape ``(Z, Y, X)`` for ``"xy"``, ``(Y, Z, X)`` for ``"xz"`` and ``(X, Z, Y)`` for
    ``"yz"``: each slice keeps the orientation of :data:`PLANE_AXIS`.
    """
    return np.moveaxis(volume, check_plane(plane), 0)
