"""The in-memory runner of a block plan, and what every runner shares.

A runner knows nothing of models or file formats. It is given

- ``read_block(read_slices) -> array``: returns the input region ``(nz_in, ny, nx)``;
- ``process(array, block) -> array``: returns the block output ``(s*(nz_in-1)+1, ny, nx)`` whose
  origin in global output coordinates is ``(s*read_z_start, read_y_start, read_x_start)``;
- a plan from :func:`skelem.inference.planner.plan_blocks`.

:func:`run_in_memory` processes the blocks one at a time, so memory holds one input block and one
block output plus the output volume. Streamed, resumable OME-Zarr outputs run their blocks as Dask
tasks (:func:`skelem.inference.dask_runner.run_on_dask`), with the progress file and fingerprint
of :mod:`skelem.inference.store`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from skelem.events import ProgressCallback, ProgressEvent, no_progress
from skelem.inference.blend import BlendAccumulator, taper_weights
from skelem.inference.planner import Block
from skelem.memory import release_free_memory

__all__ = ["check_plan_fits", "process_block", "release_free_memory", "run_in_memory"]

logger = logging.getLogger(__name__)

Slices3 = tuple[slice, slice, slice]
ReadBlock = Callable[[Slices3], np.ndarray]
ProcessBlock = Callable[[np.ndarray, Block], np.ndarray]


def run_in_memory(
    read_block: ReadBlock,
    process: ProcessBlock,
    plan: list[Block],
    out_shape: Sequence[int],
    dtype: np.dtype | type = np.float32,
    progress: ProgressCallback | None = None,
    blend_overlap: int = 0,
) -> np.ndarray:
    """Run every block of ``plan`` and assemble the output volume in memory.

    Parameters
    ----------
    read_block : callable
        ``read_block(block.read)`` returns the input region ``(nz_in, ny, nx)``.
    process : callable
        ``process(input_block, block)`` returns the block output ``(s*(nz_in-1)+1, ny, nx)``.
    plan : list of Block
        Blocks from :func:`~skelem.inference.planner.plan_blocks`.
    out_shape : sequence of 3 int
        Shape of the global output ``(s*(Z-1)+1, Y, X)``.
    dtype : numpy dtype, optional
        Dtype of the result (float32 by default).
    progress : callable, optional
        Receives ``ProgressEvent(task="blocks", step=i, total=len(plan))`` after each block.
    blend_overlap : int, optional
        0 (default): *crop* mode, each block writes exactly its write region; exact for
        tile-invariant models. ``> 0``: *blend* mode, each block contributes its write region grown
        by up to ``blend_overlap`` voxels per side (limited to what its output covers and to the
        volume), weighted by linear ramps over ``2*blend_overlap`` voxels; overlapping
        contributions are averaged. For models whose outputs are not exactly tile-invariant.
        Needs a plan halo of at least ``blend_overlap`` to blend fully.

    Returns
    -------
    numpy.ndarray
        The output volume, shape ``out_shape``.
    """
    out_shape = _shape3(out_shape)
    check_plan_fits(plan, out_shape)
    if blend_overlap < 0:
        raise ValueError(f"The blend overlap must be zero or positive, got {blend_overlap}.")
    emit = progress or no_progress
    total = len(plan)
    accumulator = BlendAccumulator(out_shape) if blend_overlap > 0 else None
    result = None if accumulator is not None else np.zeros(out_shape, dtype=dtype)
    for step, block in enumerate(plan, start=1):
        block_output = process_block(read_block, process, block)
        if accumulator is None:
            result[block.write] = block_output[block.crop]
        else:
            region, crop, pairs = _blend_region(block, block_output.shape, out_shape, blend_overlap)
            weights = taper_weights(
                tuple(s.stop - s.start for s in region), pairs, dtype=np.float64
            )
            accumulator.add(block_output[crop], region, weights)
        del block_output
        release_free_memory()
        emit(ProgressEvent(task="blocks", step=step, total=total))
    if accumulator is not None:
        return accumulator.result(dtype=dtype)
    return result


def process_block(read_block: ReadBlock, process: ProcessBlock, block: Block) -> np.ndarray:
    """Read and process one block; check that its output covers the crop.

    Parameters
    ----------
    read_block, process : callable
        As for :func:`run_in_memory`.
    block : Block
        The block.

    Returns
    -------
    numpy.ndarray
        The block output ``(s*(nz_in-1)+1, ny, nx)``.
    """
    block_input = read_block(block.read)
    block_output = process(block_input, block)
    del block_input
    if not isinstance(block_output, np.ndarray) or block_output.ndim != 3:
        raise TypeError(f"The block processor must return a 3-D numpy array (block {block.index}).")
    ny = block.read[1].stop - block.read[1].start
    nx = block.read[2].stop - block.read[2].start
    if block_output.shape[1:] != (ny, nx) or block_output.shape[0] < block.crop[0].stop:
        raise ValueError(
            f"The output of block {block.index} has shape {block_output.shape}, which does not "
            f"match its read region (y, x) = ({ny}, {nx}) and crop {block.crop}."
        )
    return block_output


def _blend_region(
    block: Block, block_out_shape: tuple[int, ...], out_shape: tuple[int, int, int], overlap: int
) -> tuple[Slices3, Slices3, list[tuple[int, int]]]:
    """Write region grown by ``overlap`` (limited by the block output and the volume) and ramps."""
    region, crop, pairs = [], [], []
    for write, crop_axis, size, n_out in zip(
        block.write, block.crop, block_out_shape, out_shape, strict=True
    ):
        origin = write.start - crop_axis.start
        start = max(write.start - overlap, origin, 0)
        stop = min(write.stop + overlap, origin + size, n_out)
        region.append(slice(start, stop))
        crop.append(slice(start - origin, stop - origin))
        pairs.append((2 * (write.start - start), 2 * (stop - write.stop)))
    return tuple(region), tuple(crop), pairs  # type: ignore[return-value]


def _shape3(values: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(v) for v in values)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"A shape must have 3 positive values (z, y, x), got {tuple(values)}.")
    return shape  # type: ignore[return-value]


def check_plan_fits(plan: Sequence[Block], out_shape: tuple[int, int, int]) -> None:
    """Every write region of ``plan`` lies inside ``out_shape`` (``ValueError`` otherwise)."""
    for block in plan:
        for sl, n in zip(block.write, out_shape, strict=True):
            if sl.start < 0 or sl.stop > n or sl.start >= sl.stop:
                raise ValueError(
                    f"The write region {block.write} of block {block.index} lies outside the "
                    f"output shape {out_shape}."
                )
