"""Tiny local "models" for testing the block planner and runners (no networks).

Each model maps an input block ``(nz_in, ny, nx)`` to a block output ``(s*(nz_in-1)+1, ny, nx)``,
like a restoration. They are built so that their untiled result is known and their tiled result
equals it exactly when the plan gives them enough context (float64 arithmetic, same operation
order for every voxel).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from skelem.inference.planner import Block, output_shape

Model = Callable[[np.ndarray, Block], np.ndarray]


def whole_volume_block(input_shape: tuple[int, int, int], factor: int) -> Block:
    """The single block of an untiled run."""
    out = output_shape(input_shape, factor)
    full_in = tuple(slice(0, n) for n in input_shape)
    full_out = tuple(slice(0, n) for n in out)
    return Block(index=(0, 0, 0), read=full_in, crop=full_out, write=full_out)  # type: ignore[arg-type]


def upsample_linear(volume: np.ndarray, factor: int) -> np.ndarray:
    """Linear interpolation along z: ``(n, Y, X) -> (factor*(n-1)+1, Y, X)`` (float64)."""
    volume = np.asarray(volume, dtype=np.float64)
    n = volume.shape[0]
    if factor == 1 or n == 1:
        return volume.copy()
    rows = np.arange(factor * (n - 1) + 1)
    k = np.minimum(rows // factor, n - 2)
    t = ((rows - k * factor) / factor)[:, None, None]
    return (1.0 - t) * volume[k] + t * volume[k + 1]


def _keys(distance: np.ndarray, a: float = -0.5) -> np.ndarray:
    d = np.abs(distance)
    near = (a + 2) * d**3 - (a + 3) * d**2 + 1
    far = a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def upsample_cubic(volume: np.ndarray, factor: int) -> np.ndarray:
    """Keys cubic convolution along z (4 taps, edges replicated), ``factor*(n-1)+1`` rows."""
    volume = np.asarray(volume, dtype=np.float64)
    n = volume.shape[0]
    if factor == 1 or n == 1:
        return volume.copy()
    rows = np.arange(factor * (n - 1) + 1)
    k = rows // factor
    t = (rows - k * factor) / factor
    out = np.zeros((rows.size, *volume.shape[1:]))
    for tap in (-1, 0, 1, 2):
        weight = _keys(t - tap)[:, None, None]
        out = out + weight * volume[np.clip(k + tap, 0, n - 1)]
    return out


def identity_model(factor: int, upsample: Callable = upsample_linear) -> Model:
    """Interpolation along z only: measured rows reproduce the input exactly."""

    def process(block_input: np.ndarray, block: Block) -> np.ndarray:  # noqa: ARG001
        return upsample(block_input, factor)

    return process


def affine_model(factor: int) -> Model:
    """The ``2x+1`` model: ``2*upsample(x)+1``."""

    def process(block_input: np.ndarray, block: Block) -> np.ndarray:  # noqa: ARG001
        return 2.0 * upsample_linear(block_input, factor) + 1.0

    return process


def box_filter_model(
    factor: int, input_shape: tuple[int, int, int], radius: tuple[int, int, int]
) -> Model:
    """Upsample, then a box sum of ``radius`` (output voxels) along z, y and x.

    Like a network on a tile, the model pads with zeros at block borders inside the volume (it
    cannot see beyond its block) and replicates edges at the global volume border only, so tiled
    results equal untiled ones only when the halo covers the radius.
    """

    def process(block_input: np.ndarray, block: Block) -> np.ndarray:
        out = upsample_linear(block_input, factor)
        for axis in range(3):
            r = radius[axis]
            if r == 0:
                continue
            read = block.read[axis]
            at_start, at_end = read.start == 0, read.stop == input_shape[axis]
            out = _box_along(out, axis, r, at_start, at_end)
        return out

    return process


def _box_along(
    volume: np.ndarray, axis: int, r: int, replicate_start: bool, replicate_end: bool
) -> np.ndarray:
    moved = np.moveaxis(volume, axis, 0)
    n = moved.shape[0]
    before = np.repeat(moved[:1], r, axis=0) if replicate_start else np.zeros((r, *moved.shape[1:]))
    after = np.repeat(moved[-1:], r, axis=0) if replicate_end else np.zeros((r, *moved.shape[1:]))
    padded = np.concatenate([before, moved, after])
    total = np.zeros_like(moved)
    for shift in range(2 * r + 1):
        total = total + padded[shift : shift + n]
    return np.moveaxis(total, 0, axis)


def pooling_model(factor: int, cell: int) -> Model:
    """Upsample, then replace every voxel by the mean of its ``cell``-sized cell in z, y and x.

    Cells are anchored at the block output origin, like the pooling grid of a U-Net anchored at the
    tile origin: tiled equals untiled only when block origins are multiples of ``cell``.
    """

    def process(block_input: np.ndarray, block: Block) -> np.ndarray:  # noqa: ARG001
        out = upsample_linear(block_input, factor)
        for axis in range(3):
            out = _cell_mean_along(out, axis, cell)
        return out

    return process


def _cell_mean_along(volume: np.ndarray, axis: int, cell: int) -> np.ndarray:
    moved = np.moveaxis(volume, axis, 0)
    n = moved.shape[0]
    out = np.empty_like(moved)
    for start in range(0, n, cell):
        part = moved[start : start + cell]
        total = np.zeros_like(part[0])
        for row in part:
            total = total + row
        out[start : start + cell] = total / part.shape[0]
    return np.moveaxis(out, 0, axis)


def block_offset_model(factor: int, offsets: dict[tuple[int, int, int], float]) -> Model:
    """Upsample plus a constant per block: the simplest model that is *not* tile-invariant."""

    def process(block_input: np.ndarray, block: Block) -> np.ndarray:
        return upsample_linear(block_input, factor) + offsets[block.index]

    return process


def array_reader(volume: np.ndarray) -> Callable[[tuple[slice, slice, slice]], np.ndarray]:
    """``read_block`` over an in-memory volume (returns copies, like a file reader)."""

    def read_block(slices: tuple[slice, slice, slice]) -> np.ndarray:
        return np.array(volume[slices], dtype=np.float64)

    return read_block


def untiled(model: Model, volume: np.ndarray, factor: int) -> np.ndarray:
    """The model applied to the whole volume as one block."""
    return model(np.asarray(volume, dtype=np.float64), whole_volume_block(volume.shape, factor))
