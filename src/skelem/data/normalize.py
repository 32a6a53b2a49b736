"""Percentile intensity normalisation, fitted on a strided subsample of a (lazy) volume.

Networks work on float32 intensities where the low percentile (0.5 by default) maps to 0 and the
high one (99.5) to 1. The normaliser is saved with the model (:meth:`PercentileNormalizer.to_dict`)
and used again to bring restored values back to the input's dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from skelem.errors import ConfigError, InputError

#: Z planes read at most when fitting on a volume too large to read whole
MAX_PLANES = 64


def as_lazy_array(array_or_volume: Any) -> Any:
    """The indexable array behind ``array_or_volume``: a ``Volume``'s ``.data``, else as is.

    Objects with ``.shape`` and ``__getitem__`` (numpy, zarr, h5py, ``AxisView``) are returned
    unchanged; anything else without a ``.shape`` goes through ``numpy.asarray``.

    Parameters
    ----------
    array_or_volume : array-like or Volume
        What to read from.

    Returns
    -------
    array-like
        An object with ``.shape`` and numpy-style slicing.
    """
    if hasattr(array_or_volume, "shape") and hasattr(array_or_volume, "__getitem__"):
        return array_or_volume
    data = getattr(array_or_volume, "data", None)
    if data is not None and hasattr(data, "shape") and hasattr(data, "__getitem__"):
        return data
    return np.asarray(array_or_volume)


def _strided_sample(array: Any, max_samples: int, seed: int) -> np.ndarray:
    """Flat float64 values read from ``array`` with strided slices, at most about ``max_samples``.

    A volume ``(Z, Y, X)`` is read as up to :data:`MAX_PLANES` evenly spaced leading-axis planes,
    each with a stride along the other axes; the stride phases are drawn from ``seed``. Only these
    slices are read from a lazy array (zarr, h5py, memmap, ``AxisView``).
    """
    shape = tuple(int(n) for n in array.shape)
    total = math.prod(shape)
    if total == 0:
        raise InputError(
            "The volume is empty (a dimension of size 0); there is nothing to normalise."
        )
    if total <= max_samples or len(shape) == 0:
        return np.asarray(array[...], dtype=np.float64).ravel()
    rng = np.random.default_rng(seed)
    if len(shape) == 1:
        step = math.ceil(total / max_samples)
        start = int(rng.integers(0, step))
        return np.asarray(array[start::step], dtype=np.float64).ravel()
    n_planes = min(shape[0], MAX_PLANES)
    planes = np.unique(np.linspace(0, shape[0] - 1, n_planes).round().astype(int))
    plane_size = math.prod(shape[1:])
    budget = max(1, max_samples // len(planes))
    step = max(1, math.ceil((plane_size / budget) ** (1.0 / (len(shape) - 1))))
    while math.prod(math.ceil(n / step) for n in shape[1:]) > budget:
        step += 1
    values = []
    for plane in planes:
        starts = rng.integers(0, min(step, min(shape[1:])), size=len(shape) - 1)
        key = (int(plane), *(slice(int(s), None, step) for s in starts))
        values.append(np.asarray(array[key], dtype=np.float64).ravel())
    return np.concatenate(values)


@dataclass(frozen=True)
class PercentileNormalizer:
    """Affine intensity map ``(x - low) / (high - low)``.

    Attributes
    ----------
    low, high : float
        Input intensities mapped to 0 and 1 (input units, e.g. uint8 grey values).
    percentiles : tuple of float
        The percentiles ``low`` and ``high`` were fitted at (provenance only).
    """

    low: float
    high: float
    percentiles: tuple[float, float] = (0.5, 99.5)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise InputError(f"The normalisation range ({self.low}, {self.high}) is not finite.")
        if not self.high > self.low:
            raise InputError(
                f"The volume has constant intensity ({self.low:g}) in its normalisation range, so "
                "there is no structure to learn or restore."
            )

    @classmethod
    def fit(
        cls,
        array_or_volume: Any,
        percentiles: tuple[float, float] = (0.5, 99.5),
        max_samples: int = 2_000_000,
        seed: int = 0,
    ) -> PercentileNormalizer:
        """Fit ``low`` and ``high`` at ``percentiles`` of a strided subsample.

        Parameters
        ----------
        array_or_volume : array-like or Volume
            A numpy array or any object with ``.shape`` and numpy-style slicing (zarr, h5py,
            ``AxisView``); a :class:`~skelem.io.volume.Volume` is read through its ``.data``.
            The whole array is read only when it has at most ``max_samples`` voxels.
        percentiles : tuple of float
            Low and high percentiles in ``[0, 100]``, low < high.
        max_samples : int
            Upper bound on the number of voxels read.
        seed : int
            Seeds the stride phases (the fit is deterministic).

        Notes
        -----
        Non-finite values are ignored. If the two percentiles coincide (very sparse data, e.g. a
        few bright cells on a flat background), the subsample's minimum and maximum are used.

        Returns
        -------
        PercentileNormalizer

        Raises
        ------
        InputError
            If the sampled intensities are constant ("...has constant intensity...").
        """
        lo_pct, hi_pct = (float(p) for p in percentiles)
        if not 0.0 <= lo_pct < hi_pct <= 100.0:
            raise ConfigError(
                f"Percentiles must satisfy 0 <= low < high <= 100, got {percentiles}."
            )
        array = as_lazy_array(array_or_volume)
        values = _strided_sample(array, int(max_samples), seed)
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise InputError("The volume holds no finite intensity values (all NaN or infinite).")
        low, high = (float(v) for v in np.percentile(values, [lo_pct, hi_pct]))
        if not high > low:
            low, high = float(values.min()), float(values.max())
        if not high > low:
            raise InputError(
                f"The volume has constant intensity ({low:g}), so there is no structure to learn "
                "or restore."
            )
        return cls(low, high, (lo_pct, hi_pct))

    @property
    def scale(self) -> float:
        """``high - low`` in input intensity units."""
        return self.high - self.low

    def normalize(self, x: Any) -> np.ndarray:
        """``(x - low) / (high - low)`` as float32 (not clipped), same shape as ``x``.

        Parameters
        ----------
        x : array-like
            Intensities in input units.

        Returns
        -------
        numpy.ndarray
            float32, same shape.
        """
        x = np.asarray(x, dtype=np.float32)
        return (x - np.float32(self.low)) / np.float32(self.scale)

    def denormalize(self, y: Any, dtype: Any = None) -> np.ndarray:
        """Back to input units: ``y * (high - low) + low``.

        Parameters
        ----------
        y : array-like
            Normalised values.
        dtype : numpy dtype, optional
            Output dtype (float32 by default). An integer dtype gets rounded values clipped to
            its range (e.g. 0-255 for uint8); a float dtype is a plain cast.

        Returns
        -------
        numpy.ndarray
            Same shape as ``y``.
        """
        values = np.asarray(y, dtype=np.float32) * np.float32(self.scale)
        values += np.float32(self.low)  # in place: one block-sized temporary, not three
        if dtype is None:
            return values
        dtype = np.dtype(dtype)
        if dtype.kind in "ui":
            info = np.iinfo(dtype)
            np.rint(values, out=values)
            np.clip(values, info.min, info.max, out=values)
            return values.astype(dtype)
        return values.astype(dtype)

    def to_dict(self) -> dict:
        """JSON-friendly ``{"low", "high", "percentiles"}``.

        Returns
        -------
        dict
        """
        return {
            "low": float(self.low),
            "high": float(self.high),
            "percentiles": list(self.percentiles),
        }

    @classmethod
    def from_dict(cls, data: dict) -> PercentileNormalizer:
        """Inverse of :meth:`to_dict`.

        Parameters
        ----------
        data : dict
            ``{"low", "high", "percentiles"}``.

        Returns
        -------
        PercentileNormalizer

        Raises
        ------
        KeyError, TypeError, ValueError
            When ``data`` is malformed.
        """
        low, high = float(data["low"]), float(data["high"])
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ValueError(f"invalid normalisation range ({low}, {high})")
        pct = tuple(float(p) for p in data.get("percentiles", (0.5, 99.5)))
        if len(pct) != 2:
            raise ValueError("percentiles must hold two values")
        return cls(low, high, pct)  # type: ignore[arg-type]
