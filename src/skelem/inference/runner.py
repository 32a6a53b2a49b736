"""Runners that execute a block plan: in memory, or streamed into a resumable zarr array.

A runner knows nothing of models or file formats. It is given

- ``read_block(read_slices) -> array``: returns the input region ``(nz_in, ny, nx)``;
- ``process(array, block) -> array``: returns the block output ``(s*(nz_in-1)+1, ny, nx)`` whose
  origin in global output coordinates is ``(s*read_z_start, read_y_start, read_x_start)``;
- a plan from :func:`skelem.inference.planner.plan_blocks`.

Blocks are processed one at a time, so memory holds one input block and one block output (plus,
for :func:`run_in_memory`, the output volume itself).

Resuming (:func:`run_streaming`)
--------------------------------
After each block's write region is stored in the zarr array, its position in the plan is recorded
as done in a small JSON sidecar file inside the store directory, replaced atomically (temporary
file + ``os.replace``). The sidecar also holds a fingerprint of the plan, output shape, dtype,
chunks and a caller-provided ``run_key`` (which should name the model and its settings). A rerun
with the same fingerprint skips the done blocks; a store with another fingerprint is refused (or
deleted and restarted with ``on_mismatch="restart"``). Write regions must be chunk-aligned, so a
block rewritten after an interruption never touches the chunks of a block already done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import zarr

from skelem.events import ProgressCallback, ProgressEvent, no_progress
from skelem.inference.blend import BlendAccumulator, taper_weights
from skelem.inference.planner import Block
from skelem.inference.store import (
    PROGRESS_FILE,
    CreateStore,
    check_store_array,
    create_store_array,
    finalize_store,
    open_for_resume,
    plan_fingerprint,
    read_done_positions,
    write_progress,
)

__all__ = [
    "PROGRESS_FILE",
    "finalize_store",
    "plan_fingerprint",
    "read_done_positions",
    "run_in_memory",
    "run_streaming",
]

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
    _check_plan_fits(plan, out_shape)
    if blend_overlap < 0:
        raise ValueError(f"The blend overlap must be zero or positive, got {blend_overlap}.")
    emit = progress or no_progress
    total = len(plan)
    accumulator = BlendAccumulator(out_shape) if blend_overlap > 0 else None
    result = None if accumulator is not None else np.zeros(out_shape, dtype=dtype)
    for step, block in enumerate(plan, start=1):
        block_output = _process_block(read_block, process, block)
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


def run_streaming(
    read_block: ReadBlock,
    process: ProcessBlock,
    plan: list[Block],
    out_store_path: str | os.PathLike[str],
    out_shape: Sequence[int],
    dtype: np.dtype | type = np.float32,
    chunks: Sequence[int] | None = None,
    progress: ProgressCallback | None = None,
    create_store: CreateStore | None = None,
    done_key: str = PROGRESS_FILE,
    run_key: str = "",
    on_mismatch: Literal["error", "restart"] = "error",
    max_blocks: int | None = None,
) -> zarr.Array:
    """Run ``plan`` block by block, writing each write region into a zarr array; resumable.

    Parameters
    ----------
    read_block, process, plan
        As in :func:`run_in_memory`.
    out_store_path : path
        Directory of the (partial) output store, e.g. ``out.zarr.partial``. Created when absent.
    out_shape : sequence of 3 int
        Shape of the global output ``(s*(Z-1)+1, Y, X)``.
    dtype : numpy dtype, optional
        Dtype of the stored array (block outputs are cast to it).
    chunks : sequence of 3 int, optional
        Chunk shape of the array; defaults to the shape of the first block's write region. Every
        write region must start on a chunk boundary (plan with the same ``chunks``).
    progress : callable, optional
        Receives ``ProgressEvent(task="blocks", step=i, total=len(plan))``; ``step`` counts blocks
        done including those skipped on resume (one event with the skipped count comes first).
    create_store : callable, optional
        ``create_store(path, shape, dtype, chunks) -> zarr.Array`` creates the array (e.g. an
        OME-Zarr image via ``skelem.io``); the array may live at a sub-path of the store. Defaults
        to a plain zarr v3 array at ``path`` with fill value 0.
    done_key : str, optional
        File name of the sidecar progress file inside the store directory.
    run_key : str, optional
        Caller-chosen description of what produces the values (model id, method, seed...). It is
        part of the fingerprint, so a different model never reuses blocks of another.
    on_mismatch : {"error", "restart"}, optional
        What to do when the store exists but has no progress file or one with another
        fingerprint: raise :class:`~skelem.errors.OutputExistsError` (default) or delete the store
        and start over.
    max_blocks : int, optional
        Process at most this many blocks in this call and return, leaving the rest to a later call
        (which resumes). A process that restores a huge volume in rounds of ``max_blocks`` blocks,
        each in a fresh process, keeps its memory bounded whatever the allocator does across blocks.

    Returns
    -------
    zarr.Array
        The array holding the output, complete unless ``max_blocks`` stopped the run early (the
        store still carries the progress file; :func:`read_done_positions` tells how far it got;
        call :func:`finalize_store` to remove it and rename the store).
    """
    out_shape = _shape3(out_shape)
    _check_plan_fits(plan, out_shape)
    if max_blocks is not None and max_blocks < 1:
        raise ValueError(f"max_blocks must be at least 1, got {max_blocks}.")
    dtype = np.dtype(dtype)
    chunks = _shape3(chunks) if chunks is not None else _write_shape(plan[0]) if plan else out_shape
    store_path = Path(out_store_path)
    progress_path = store_path / done_key
    fingerprint = plan_fingerprint(plan, out_shape, dtype, chunks, run_key)
    emit = progress or no_progress
    total = len(plan)

    array, done = open_for_resume(store_path, progress_path, fingerprint, on_mismatch)
    if array is None:
        array = create_store_array(store_path, out_shape, dtype, chunks, create_store)
        done = np.zeros(total, dtype=bool)
        write_progress(progress_path, fingerprint, run_key, array.path, done)
    elif done.size != total:  # pragma: no cover - guarded by the fingerprint
        raise ValueError("The progress file does not match the number of blocks of the plan.")
    check_store_array(array, out_shape, dtype, plan, store_path)

    step = int(done.sum())
    if step:
        logger.info("resuming %s: %d of %d blocks already done", store_path, step, total)
        emit(ProgressEvent(task="blocks", step=step, total=total))
    processed = 0
    for position, block in enumerate(plan):
        if done[position]:
            continue
        if max_blocks is not None and processed >= max_blocks:
            break
        processed += 1
        block_output = _process_block(read_block, process, block)
        array[block.write] = np.asarray(block_output[block.crop], dtype=dtype)
        del block_output
        release_free_memory()
        done[position] = True
        write_progress(progress_path, fingerprint, run_key, array.path, done)
        step += 1
        emit(ProgressEvent(task="blocks", step=step, total=total))
    return array


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on other C libraries (macOS, Windows, musl)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Give the heap memory freed by the last block back to the operating system.

    Without it glibc keeps the freed block buffers (hundreds of MB of torch activations and slice
    arrays, allocated in varying sizes) in fragmented arenas, and the resident size of a long run
    creeps up block after block: measured 478 -> 812 MiB between blocks 1 and 8 of a
    63 x 500 x 250 restoration (benchmarks/RESULTS.md, peak memory).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _process_block(read_block: ReadBlock, process: ProcessBlock, block: Block) -> np.ndarray:
    """Read and process one block; check that its output covers the crop."""
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


def _write_shape(block: Block) -> tuple[int, int, int]:
    return tuple(s.stop - s.start for s in block.write)  # type: ignore[return-value]


def _check_plan_fits(plan: Sequence[Block], out_shape: tuple[int, int, int]) -> None:
    for block in plan:
        for sl, n in zip(block.write, out_shape, strict=True):
            if sl.start < 0 or sl.stop > n or sl.start >= sl.stop:
                raise ValueError(
                    f"The write region {block.write} of block {block.index} lies outside the "
                    f"output shape {out_shape}."
                )
