"""Overlap blending of block outputs (optional mode of the runners).

The default way of assembling blocks is *crop*: each block writes only its own write region, which
is exact for tile-invariant models. For models whose outputs are not perfectly tile-invariant (e.g.
a stochastic refiner), each block can instead write its region grown by ``overlap`` voxels on every
side that has a neighbour, weighted by linear ramps, and the accumulated weighted sum is divided by
the accumulated weights. Seams then fade over ``2*overlap`` voxels instead of showing as steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BlendAccumulator", "taper_weights"]

Slices3 = tuple[slice, slice, slice]


def taper_weights(
    shape: Sequence[int],
    overlap: int | Sequence[int] | Sequence[tuple[int, int]],
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """Separable weights that rise linearly over ``overlap`` voxels at each side.

    Along one axis of length ``n`` with ramp widths ``(before, after)`` the weight at position ``i``
    is ``min(1, (i+0.5)/before, (n-i-0.5)/after)`` (a ramp of width 0 is no ramp). Two
    neighbouring regions that share a zone of ``w`` voxels and both ramp over it have weights
    summing to exactly 1 there. Weights are always strictly positive.

    Parameters
    ----------
    shape : sequence of int
        Shape of the weighted region, e.g. ``(Z, Y, X)``.
    overlap : int or sequence
        Ramp width in voxels: one int for every side, one int per axis, or one ``(before, after)``
        pair per axis.
    dtype : numpy dtype, optional
        Dtype of the result (default float32).

    Returns
    -------
    numpy.ndarray
        Array of ``shape`` with values in ``(0, 1]``, the product of one 1-D ramp per axis.
    """
    shape = tuple(int(n) for n in shape)
    pairs = _ramp_pairs(overlap, len(shape))
    weights = np.ones(shape, dtype=dtype)
    for axis, (n, (before, after)) in enumerate(zip(shape, pairs, strict=True)):
        if before == 0 and after == 0:
            continue
        profile = np.ones(n, dtype=np.float64)
        centres = np.arange(n, dtype=np.float64) + 0.5
        if before > 0:
            profile = np.minimum(profile, centres / before)
        if after > 0:
            profile = np.minimum(profile, (n - centres) / after)
        view = [1] * len(shape)
        view[axis] = n
        weights *= profile.reshape(view).astype(dtype)
    return weights


def _ramp_pairs(
    overlap: int | Sequence[int] | Sequence[tuple[int, int]], ndim: int
) -> list[tuple[int, int]]:
    if isinstance(overlap, int | np.integer):
        items: list = [int(overlap)] * ndim
    else:
        items = list(overlap)
        if len(items) != ndim:
            raise ValueError(f"The overlap must have one entry per axis ({ndim}), got {overlap!r}.")
    pairs = []
    for item in items:
        pair = (
            (int(item), int(item))
            if isinstance(item, int | np.integer)
            else tuple(int(v) for v in item)
        )
        if len(pair) != 2 or min(pair) < 0:
            raise ValueError(
                f"Every overlap must be a non-negative width or pair, got {overlap!r}."
            )
        pairs.append(pair)
    return pairs


class BlendAccumulator:
    """Weighted average of overlapping block outputs, held in memory.

    Parameters
    ----------
    out_shape : sequence of int
        Shape of the global output ``(Z, Y, X)``.
    dtype : numpy dtype, optional
        Dtype of the running sums (float64 by default, so that equal contributions average to
        exactly the same value up to rounding of the final cast).

    Examples
    --------
    >>> acc = BlendAccumulator((4, 4, 4))
    >>> acc.add(np.ones((4, 4, 4)), (slice(0, 4),) * 3, taper_weights((4, 4, 4), 2))
    >>> float(acc.result().min())
    1.0
    """

    def __init__(self, out_shape: Sequence[int], dtype: np.dtype | type = np.float64) -> None:
        self.out_shape = tuple(int(n) for n in out_shape)
        self._sum = np.zeros(self.out_shape, dtype=dtype)
        self._weight = np.zeros(self.out_shape, dtype=dtype)

    def add(
        self,
        block_output_cropped: np.ndarray,
        write_slices: Slices3,
        weights: np.ndarray | None = None,
    ) -> None:
        """Add one block's contribution.

        Parameters
        ----------
        block_output_cropped : numpy.ndarray
            The block output restricted to the region it contributes, shape equal to the region
            selected by ``write_slices``.
        write_slices : tuple of slice
            Where the contribution lands in the global output.
        weights : numpy.ndarray, optional
            Positive weights of the same shape (e.g. :func:`taper_weights`); ones when omitted.
        """
        target = self._sum[write_slices]
        if block_output_cropped.shape != target.shape:
            raise ValueError(
                f"The block output shape {block_output_cropped.shape} does not match its write "
                f"region shape {target.shape}."
            )
        if weights is None:
            target += block_output_cropped
            self._weight[write_slices] += 1
            return
        if weights.shape != target.shape:
            raise ValueError(
                f"The weights shape {weights.shape} does not match the write region shape "
                f"{target.shape}."
            )
        target += block_output_cropped * weights
        self._weight[write_slices] += weights

    def result(self, dtype: np.dtype | type = np.float32) -> np.ndarray:
        """Weighted mean of all contributions, cast to ``dtype``.

        Parameters
        ----------
        dtype : numpy dtype, optional
            Dtype of the result (float32 by default).

        Returns
        -------
        numpy.ndarray

        Raises
        ------
        ValueError
            When some voxel received no contribution (the blocks do not cover the output).
        """
        if not np.all(self._weight > 0):
            missing = int(np.count_nonzero(self._weight <= 0))
            raise ValueError(f"{missing} output voxels received no block contribution.")
        return (self._sum / self._weight).astype(dtype)
