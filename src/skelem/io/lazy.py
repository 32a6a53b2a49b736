"""A lazy ``(Z, Y, X)`` view of an N-D array whose other axes are singletons or fixed indices."""

from __future__ import annotations

from typing import Any

import numpy as np


def _expand_key(key: Any, ndim: int) -> tuple[Any, ...]:
    """Normalise an index to exactly ``ndim`` entries (``Ellipsis`` expanded, missing -> ``:``)."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is None for k in key):
        raise IndexError("new axes (None) are not supported by lazy volume views")
    n_ellipsis = sum(1 for k in key if k is Ellipsis)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_ellipsis:
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = ndim - (len(key) - 1)
        key = key[:at] + (slice(None),) * fill + key[at + 1 :]
    if len(key) > ndim:
        raise IndexError(f"too many indices for a {ndim}-D volume")
    return key + (slice(None),) * (ndim - len(key))


class AxisView:
    """Read-only ``(Z, Y, X)`` view of an N-D lazy array without loading it.

    Parameters
    ----------
    array : array-like
        Zarr array, h5py dataset, memmap... indexable with a tuple of ints and slices.
    spatial : tuple of int
        Positions of the z, y and x axes in ``array``.
    fixed : dict of int to int
        Index used on each remaining axis (usually 0 on a singleton channel or time axis).

    Notes
    -----
    Indexing accepts integers, slices and ``...`` and returns numpy arrays; nothing is read
    before indexing.
    """

    def __init__(self, array: Any, spatial: tuple[int, int, int], fixed: dict[int, int]) -> None:
        if sorted([*spatial, *fixed]) != list(range(len(array.shape))):
            raise ValueError("spatial and fixed axes must cover every axis of the array once")
        self.array = array
        self.spatial = tuple(spatial)
        self.fixed = dict(fixed)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the view, ``(Z, Y, X)``."""
        return tuple(int(self.array.shape[a]) for a in self.spatial)

    @property
    def dtype(self) -> np.dtype:
        """Data type of the underlying array."""
        return np.dtype(self.array.dtype)

    @property
    def ndim(self) -> int:
        """Always 3."""
        return 3

    @property
    def size(self) -> int:
        """Number of voxels of the view."""
        return int(np.prod(self.shape))

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """Chunk shape of the underlying array along ``(Z, Y, X)``, ``None`` when unchunked."""
        chunks = getattr(self.array, "chunks", None)
        if chunks is None:
            return None
        return tuple(int(chunks[a]) for a in self.spatial)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"AxisView(shape={self.shape}, dtype={self.dtype}, of {type(self.array).__name__})"

    def __getitem__(self, key: Any) -> np.ndarray:
        parts = _expand_key(key, 3)
        for part in parts:
            if not isinstance(part, slice | int | np.integer):
                raise IndexError("lazy volume views accept only integers, slices and '...'")
        full: list[Any] = [None] * len(self.array.shape)
        for axis, index in self.fixed.items():
            full[axis] = index
        for axis, part in zip(self.spatial, parts, strict=True):
            full[axis] = part
        result = np.asarray(self.array[tuple(full)])
        # Axes kept by slicing come out in source order; put them back in z, y, x order.
        kept = [
            axis for axis, part in zip(self.spatial, parts, strict=True) if isinstance(part, slice)
        ]
        order = sorted(range(len(kept)), key=lambda i: kept[i])
        if order != list(range(len(kept))):
            result = np.transpose(result, np.argsort(order))
        return result

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self[...]
        return data if dtype is None else data.astype(dtype)
