"""Checks on a volume before it is used: dimensionality, data type, size and finite values.

``open_volume`` checks shape and data type at once but does not read voxels; NaN and infinity
are found by :func:`check_finite`, which scans the volume slab by slab along Z.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from skelem.errors import InputError
from skelem.io.readers import check_array
from skelem.io.volume import Volume

#: Default memory budget of one slab read by :func:`check_finite`.
SLAB_BYTES = 64 * 2**20


def _as_volume(volume: Volume | Any) -> Volume:
    return volume if isinstance(volume, Volume) else Volume(data=volume)


def _slab_slices(data: Any, chunk_slices: int | None) -> int:
    """Number of Z slices per slab: ``chunk_slices``, else ~64 MiB rounded to the Z chunk size."""
    if chunk_slices is not None:
        if int(chunk_slices) < 1:
            raise ValueError(f"chunk_slices must be at least 1, got {chunk_slices}")
        return int(chunk_slices)
    z, y, x = (int(n) for n in data.shape)
    per_slice = max(1, y * x * np.dtype(data.dtype).itemsize)
    slices = max(1, SLAB_BYTES // per_slice)
    chunks = getattr(data, "chunks", None)
    if chunks and isinstance(chunks, tuple) and chunks[0]:
        step = int(chunks[0])
        slices = max(step, slices // step * step)
    return min(slices, z)


def _slabs(data: Any, chunk_slices: int | None) -> Iterator[tuple[int, np.ndarray]]:
    """``(first Z index, slab)`` over ``data`` read in slabs of :func:`_slab_slices` slices."""
    step = _slab_slices(data, chunk_slices)
    depth = int(data.shape[0])
    for start in range(0, depth, step):
        yield start, np.asarray(data[start : min(start + step, depth)])


def check_finite(volume: Volume | Any, chunk_slices: int | None = None) -> None:
    """Raise :class:`InputError` if the volume contains NaN or infinite values.

    The volume is read in slabs of ``chunk_slices`` Z slices (default: about 64 MiB, aligned
    to the storage chunks), never whole. Integer volumes are always finite and are not read.

    Parameters
    ----------
    volume : Volume or array-like
        A ``(Z, Y, X)`` volume (lazy or in memory).
    chunk_slices : int, optional
        Number of Z slices read at a time.

    Raises
    ------
    InputError
        "``source`` contains NaN or infinite values (first at slice z=K)."
    """
    volume = _as_volume(volume)
    data = volume.data
    if not np.issubdtype(np.dtype(data.dtype), np.floating):
        return
    for start, slab in _slabs(data, chunk_slices):
        finite = np.isfinite(slab)
        if not finite.all():
            bad = np.flatnonzero(~finite.reshape(slab.shape[0], -1).all(axis=1))
            first = start + int(bad[0])
            raise InputError(
                f"{volume.source} contains NaN or infinite values (first at slice z={first}); "
                "replace them (e.g. with 0) before using this volume."
            )


def intensity_range(volume: Volume | Any, chunk_slices: int | None = None) -> tuple[float, float]:
    """Smallest and largest finite value of a volume, read slab by slab along Z.

    Parameters
    ----------
    volume : Volume or array-like
        The ``(Z, Y, X)`` volume.
    chunk_slices : int, optional
        Z slices read at a time (default: about 64 MiB, rounded to the Z chunk size).

    Returns
    -------
    tuple of float
        ``(min, max)``; ``(nan, nan)`` when the volume holds no finite value.
    """
    low, high, _ = intensity_summary(volume, chunk_slices)
    return low, high


def intensity_summary(
    volume: Volume | Any, chunk_slices: int | None = None
) -> tuple[float, float, int]:
    """The finite range and the number of NaN/Inf voxels of a volume, in one pass.

    Parameters
    ----------
    volume : Volume or array-like
        The ``(Z, Y, X)`` volume.
    chunk_slices : int, optional
        Z slices read at a time (default: about 64 MiB, rounded to the Z chunk size).

    Returns
    -------
    tuple
        ``(min, max, non_finite)``; min and max are ``nan`` when no value is finite.
    """
    volume = _as_volume(volume)
    data = volume.data
    floating = np.issubdtype(np.dtype(data.dtype), np.floating)
    low, high, bad = np.inf, -np.inf, 0
    for _, slab in _slabs(data, chunk_slices):
        if floating:
            finite = np.isfinite(slab)
            bad += int(finite.size - np.count_nonzero(finite))
            slab = slab[finite]
        if slab.size:
            low, high = min(low, float(slab.min())), max(high, float(slab.max()))
    if low > high:
        return float("nan"), float("nan"), bad
    return low, high, bad


def validate_volume(
    volume: Volume | Any,
    min_slices: int = 3,
    min_lateral: int | None = None,
    check_values: bool = True,
    chunk_slices: int | None = None,
) -> Volume:
    """Check that a volume is usable and return it (wrapped in a :class:`Volume` if needed).

    Parameters
    ----------
    volume : Volume or array-like
        The ``(Z, Y, X)`` volume.
    min_slices : int
        Fewest acquired Z slices accepted (interpolation between slices needs a few).
    min_lateral : int, optional
        Fewest pixels accepted along Y and X (e.g. the network's patch size).
    check_values : bool
        Scan for NaN/infinity with :func:`check_finite` (reads the whole volume, slab by slab).
    chunk_slices : int, optional
        Slab depth for the finite-value scan.

    Returns
    -------
    Volume
        The volume, wrapped in a :class:`Volume` when an array was given.

    Raises
    ------
    InputError
        Wrong dimensionality or data type, too few slices, too small laterally, NaN/infinity.
    """
    volume = _as_volume(volume)
    check_array(volume.data, volume.source)
    depth, height, width = volume.shape
    if depth < min_slices:
        raise InputError(
            f"{volume.source} has {depth} slice(s) along Z; at least {min_slices} are needed."
        )
    if min_lateral is not None and min(height, width) < min_lateral:
        raise InputError(
            f"{volume.source} is {height}x{width} pixels in Y and X; at least "
            f"{min_lateral}x{min_lateral} are needed."
        )
    if check_values:
        check_finite(volume, chunk_slices=chunk_slices)
    return volume
