"""Block planning for tiled restoration: pure geometry, no data and no models.

Restoration maps an anisotropic input volume of shape ``(Z, Y, X)`` and integer anisotropy factor
``s`` to an output of shape ``(s*(Z-1)+1, Y, X)``; acquired slice ``k`` lands on output row ``k*s``.
A volume too large for memory is cut into blocks. For each block the planner gives

- ``write``: the part of the global output the block is responsible for. Write regions tile the
  output exactly once and start on output-chunk boundaries, so blocks written in parallel or in a
  stream never touch the same zarr chunk.
- ``read``: the input region (z in *input slices*) to hand to the model. It is the write region
  grown by the network halo (clamped to the volume), converted to input slices, plus a few extra
  slices of interpolation context along z, with its start rounded down to the network alignment.
- ``crop``: where the write region sits inside the model's output for that read region. Processing
  ``read`` gives an array of shape ``(s*(nz_in-1)+1, ny, nx)`` whose origin in global output
  coordinates is ``(s*read_z_start, read_y_start, read_x_start)``.

With a model whose output at a voxel depends only on input within the halo (and whose pooling grids
are anchored at multiples of ``align``), pasting ``output[crop]`` into ``write`` for every block
reproduces the untiled result exactly.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

from skelem.errors import ConfigError
from skelem.grid import restored_shape

__all__ = [
    "Block",
    "BlockPlanError",
    "block_output_origin",
    "block_output_shape",
    "choose_block_shape",
    "largest_read_voxels",
    "output_shape",
    "plan_blocks",
]

Slices3 = tuple[slice, slice, slice]
Shape3 = tuple[int, int, int]


class BlockPlanError(ConfigError, ValueError):
    """A block plan cannot be made from the given geometry (also a :class:`ValueError`)."""


@dataclass(frozen=True)
class Block:
    """One block of a tiled restoration.

    Attributes
    ----------
    index : tuple of int
        Position ``(iz, iy, ix)`` of the block in the grid of blocks.
    read : tuple of slice
        Input region to process, ``(z, y, x)``; z counts *input* slices.
    crop : tuple of slice
        The write region inside the processed block's output, in output voxels relative to the
        block output's origin ``(s*read[0].start, read[1].start, read[2].start)``.
    write : tuple of slice
        Where ``block_output[crop]`` goes in the global output, in output voxels.
    """

    index: tuple[int, int, int]
    read: Slices3
    crop: Slices3
    write: Slices3


def output_shape(input_shape: Sequence[int], factor: int) -> Shape3:
    """Shape of the restored volume.

    Parameters
    ----------
    input_shape : sequence of 3 int
        Input shape ``(Z, Y, X)`` in voxels (Z in acquired slices).
    factor : int
        Anisotropy factor ``s >= 1``.

    Returns
    -------
    tuple of int
        ``(s*(Z-1)+1, Y, X)``.
    """
    return restored_shape(_positive_triple(input_shape, "input shape"), _check_factor(factor))


def block_output_shape(block: Block, factor: int) -> Shape3:
    """Shape ``(s*(nz_in-1)+1, ny, nx)`` of the output of processing ``block.read``.

    Parameters
    ----------
    block : Block
        A planned block.
    factor : int
        Anisotropy factor.

    Returns
    -------
    tuple of int
    """
    return restored_shape(tuple(sl.stop - sl.start for sl in block.read), factor)


def block_output_origin(block: Block, factor: int) -> Shape3:
    """Global output coordinates ``(s*z0, y0, x0)`` of the first voxel of the block's output.

    Parameters
    ----------
    block : Block
        A planned block.
    factor : int
        Anisotropy factor.

    Returns
    -------
    tuple of int
    """
    return (factor * block.read[0].start, block.read[1].start, block.read[2].start)


def plan_blocks(
    input_shape: Sequence[int],
    factor: int,
    block_shape: Sequence[int],
    halo: Sequence[int],
    align: int = 1,
    chunks: Sequence[int] | None = None,
    interp_halo_slices: int = 2,
) -> list[Block]:
    """Cut a restoration into blocks with read, crop and write slices.

    Parameters
    ----------
    input_shape : sequence of 3 int
        Input shape ``(Z, Y, X)``; Z in acquired slices.
    factor : int
        Anisotropy factor ``s >= 1``.
    block_shape : sequence of 3 int
        Size of the write regions in *output* voxels ``(z, y, x)``. When ``chunks`` is given and
        ``block_shape`` is not a multiple of it, each axis is rounded **up** to the next multiple of
        the chunk size (so that no two blocks write into the same chunk).
    halo : sequence of 3 int
        Context needed on each side of a write region, in *output* voxels ``(z, y, x)``
        (the model's receptive-field radius). Zero is allowed.
    align : int, optional
        Network size multiple ``m`` (``2**depth``). Read regions start at multiples of ``m`` in y
        and x, and along z at an input slice ``k`` with ``k*s`` a multiple of ``m`` (rounded down,
        never below 0), so pooling grids match those of an untiled run.
    chunks : sequence of 3 int, optional
        Output chunk shape ``(z, y, x)``; write regions start on chunk boundaries.
    interp_halo_slices : int, optional
        Extra input slices read on each side along z (when the volume has them) so that the z
        interpolation (cubic: 4 taps) inside the block equals the untiled one. Default 2.

    Returns
    -------
    list of Block
        Blocks in C order of their ``index`` (z slowest). Their write regions are disjoint and
        cover the output shape ``(s*(Z-1)+1, Y, X)``.

    Raises
    ------
    BlockPlanError
        (a :class:`ValueError`) when a size is not positive, a halo negative or ``factor < 1``.
    """
    in_shape = _positive_triple(input_shape, "input shape")
    factor = _check_factor(factor)
    out_shape = output_shape(in_shape, factor)
    block = _positive_triple(block_shape, "block shape")
    halo_zyx = _non_negative_triple(halo, "halo")
    align = _positive_int(align, "alignment")
    interp_halo_slices = _non_negative_int(interp_halo_slices, "interp_halo_slices")
    if chunks is not None:
        chunk_zyx = _positive_triple(chunks, "chunk shape")
        block = tuple(math.ceil(b / c) * c for b, c in zip(block, chunk_zyx, strict=True))

    # Along z the read start is an input slice k with k*s a multiple of align.
    z_align = align // math.gcd(align, factor)

    starts = [range(0, n, b) for n, b in zip(out_shape, block, strict=True)]
    blocks: list[Block] = []
    for iz, z0 in enumerate(starts[0]):
        z1 = min(z0 + block[0], out_shape[0])
        read_z, crop_z = _plan_z(
            z0, z1, factor, halo_zyx[0], in_shape[0], z_align, interp_halo_slices
        )
        for iy, y0 in enumerate(starts[1]):
            y1 = min(y0 + block[1], out_shape[1])
            read_y, crop_y = _plan_lateral(y0, y1, halo_zyx[1], out_shape[1], align)
            for ix, x0 in enumerate(starts[2]):
                x1 = min(x0 + block[2], out_shape[2])
                read_x, crop_x = _plan_lateral(x0, x1, halo_zyx[2], out_shape[2], align)
                blocks.append(
                    Block(
                        index=(iz, iy, ix),
                        read=(read_z, read_y, read_x),
                        crop=(crop_z, crop_y, crop_x),
                        write=(slice(z0, z1), slice(y0, y1), slice(x0, x1)),
                    )
                )
    return blocks


def choose_block_shape(
    input_shape: Sequence[int],
    factor: int,
    halo: Sequence[int],
    align: int = 1,
    *,
    max_read_voxels: int,
    workers: int = 1,
    thread_gain: float = 0.0,
    block_overhead_voxels: int = 1 << 20,
    chunk_of=None,
) -> Shape3:
    """The output block that restores a volume fastest within a memory budget.

    Every block recomputes its halo: a block of 128 x 512 x 512 output voxels with SkelEM's halo
    (108 x 104 x 104) computes 5.3x its own voxels. This picks the write block ``(z, y, x)`` that
    minimises the estimated wall time, the voxels computed over all blocks (their read regions,
    halos included, plus ``block_overhead_voxels`` per block for reading, writing and scheduling)
    divided by the parallelism but never below the largest block's, under two constraints:
    the largest read region stays within ``max_read_voxels`` (the block's memory), and the block
    is a multiple of 32 along z and of 64 in y and x, or the whole axis. Tall blocks (the whole
    depth of a thin volume) and as few cuts as the budget allows win; a small volume is split
    when ``workers`` share it faster than one worker's threads would. ``n`` blocks keep
    ``b = min(n, workers)`` workers busy, each with ``workers // b`` threads worth
    ``1 + thread_gain * (workers // b - 1)`` single-threaded workers (the idle cores serve as
    threads, as :func:`~skelem.inference.dask_runner.connect` gives them).

    Parameters
    ----------
    input_shape : sequence of 3 int
        Input shape ``(Z, Y, X)``; Z in acquired slices.
    factor : int
        Anisotropy factor.
    halo : sequence of 3 int
        The method's halo in output voxels ``(z, y, x)``.
    align : int
        Network size multiple (as for :func:`plan_blocks`).
    max_read_voxels : int
        Largest read region allowed, in output voxels (``(s*(nz_in-1)+1) * ny * nx``).
    workers : int
        Processes that restore blocks at once.
    thread_gain : float
        What a worker's extra thread is worth relative to an extra worker (0: nothing).
    block_overhead_voxels : int
        The fixed cost of a block (reading, writing, scheduling), in computed voxels.
    chunk_of : callable, optional
        ``chunk_of(block_shape) -> chunks``: the output chunks of a block (the planner rounds the
        block up to their multiple); default: chunks equal to the block.

    Returns
    -------
    tuple of int
        The output block ``(z, y, x)``; the whole output when nothing fits the budget better.
    """
    in_shape = _positive_triple(input_shape, "input shape")
    factor = _check_factor(factor)
    hz, hy, hx = _non_negative_triple(halo, "halo")
    align = _positive_int(align, "alignment")
    workers = _positive_int(workers, "worker count")
    out = output_shape(in_shape, factor)
    z_align = align // math.gcd(align, factor)
    chunk_of = chunk_of or (lambda block: block)

    def candidates(size: int, step: int) -> list[int]:
        return sorted({*range(step, size, step), size})

    def axis_reads(axis: int, block: int, chunk: int) -> tuple[int, int, int]:
        """(sum of read lengths, largest read length, blocks) along one axis, in output voxels."""
        size = out[axis]
        block = math.ceil(block / chunk) * chunk
        total = largest = count = 0
        for start in range(0, size, block):
            stop = min(start + block, size)
            if axis == 0:
                read, _ = _plan_z(start, stop, factor, hz, in_shape[0], z_align, 2)
                length = factor * (read.stop - read.start - 1) + 1
            else:
                read, _ = _plan_lateral(start, stop, (hy, hx)[axis - 1], size, align)
                length = read.stop - read.start
            total, largest, count = total + length, max(largest, length), count + 1
        return total, largest, count

    per_axis = []
    for axis, step in ((0, 32), (1, 64), (2, 64)):
        rows = {}
        for b in candidates(out[axis], step):
            probe = [out[0], out[1], out[2]]
            probe[axis] = b
            rows[b] = axis_reads(axis, b, chunk_of(tuple(probe))[axis])
        per_axis.append(rows)

    best, best_cost = out, math.inf
    for bz, (tz, mz, nz) in per_axis[0].items():
        for by, (ty, my, ny) in per_axis[1].items():
            if mz * my > max_read_voxels:
                continue
            for bx, (tx, mx, nx) in per_axis[2].items():
                if mz * my * mx > max_read_voxels:
                    continue
                n = nz * ny * nx
                busy = min(n, workers)  # workers with blocks; the idle cores become threads
                speed = 1 + thread_gain * (workers // busy - 1)  # of one worker
                # no faster than its largest block (the last worker still busy with it)
                largest = (mz * my * mx + block_overhead_voxels) / speed
                cost = max((tz * ty * tx + n * block_overhead_voxels) / (busy * speed), largest)
                if cost < best_cost * (1 - 1e-9):
                    best, best_cost = (bz, by, bx), cost
    if best_cost == math.inf:  # nothing fits: the smallest block of every axis
        best = tuple(min(rows) for rows in per_axis)  # type: ignore[assignment]
    return best  # type: ignore[return-value]


def largest_read_voxels(
    block_shape: Sequence[int], factor: int, halo: Sequence[int], align: int = 1
) -> int:
    """Output voxels of the read region of an interior block of ``block_shape`` (halo included).

    The memory a block needs grows with this; :func:`choose_block_shape` takes it as a budget.

    Parameters
    ----------
    block_shape : sequence of 3 int
        The write block in output voxels ``(z, y, x)``.
    factor : int
        Anisotropy factor.
    halo : sequence of 3 int
        The method's halo in output voxels.
    align : int
        Network size multiple.

    Returns
    -------
    int
        The largest read region over the blocks of a volume 9 blocks wide on every axis.
    """
    bz, by, bx = _positive_triple(block_shape, "block shape")
    factor = _check_factor(factor)
    n_in = (9 * bz) // factor + 1
    plan = plan_blocks((n_in, 9 * by, 9 * bx), factor, (bz, by, bx), halo, align=align)
    return max(math.prod(block_output_shape(b, factor)) for b in plan)


def _plan_lateral(start: int, stop: int, halo: int, size: int, align: int) -> tuple[slice, slice]:
    """Read and crop slices along y or x (input and output grids coincide)."""
    read_start = (max(start - halo, 0) // align) * align
    read_stop = min(stop + halo, size)
    return slice(read_start, read_stop), slice(start - read_start, stop - read_start)


def _plan_z(
    start: int, stop: int, factor: int, halo: int, n_slices: int, z_align: int, interp_halo: int
) -> tuple[slice, slice]:
    """Read slice (input slices) and crop slice (output rows) along z.

    Output rows ``start-halo .. stop-1+halo`` sit at input positions ``row/s``; the read covers the
    input slices bracketing them plus ``interp_halo`` slices on each side, clamped to the volume.
    """
    first = (start - halo) // factor - interp_halo  # floor division: floor((start-halo)/s)
    last = -((-(stop - 1 + halo)) // factor) + interp_halo  # ceil((stop-1+halo)/s)
    read_start = (max(first, 0) // z_align) * z_align
    read_stop = min(last + 1, n_slices)
    origin = factor * read_start
    return slice(read_start, read_stop), slice(start - origin, stop - origin)


def _check_factor(factor: int) -> int:
    if isinstance(factor, bool) or not isinstance(factor, numbers.Integral):
        raise BlockPlanError(f"The anisotropy factor must be an integer, got {factor!r}.")
    if factor < 1:
        raise BlockPlanError(f"The anisotropy factor must be at least 1, got {factor}.")
    return int(factor)


def _as_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BlockPlanError(f"The {what} must be made of integers, got {value!r}.")
    return int(value)


def _triple(values: Sequence[int], what: str) -> Shape3:
    try:
        items = tuple(values)
    except TypeError:
        raise BlockPlanError(f"The {what} must have 3 values (z, y, x), got {values!r}.") from None
    if len(items) != 3:
        raise BlockPlanError(f"The {what} must have 3 values (z, y, x), got {values!r}.")
    z, y, x = (_as_int(v, what) for v in items)
    return (z, y, x)


def _positive_triple(values: Sequence[int], what: str) -> Shape3:
    triple = _triple(values, what)
    if min(triple) < 1:
        raise BlockPlanError(f"Every value of the {what} must be positive, got {triple}.")
    return triple


def _non_negative_triple(values: Sequence[int], what: str) -> Shape3:
    triple = _triple(values, what)
    if min(triple) < 0:
        raise BlockPlanError(f"Every value of the {what} must be zero or positive, got {triple}.")
    return triple


def _positive_int(value: int, what: str) -> int:
    number = _as_int(value, what)
    if number < 1:
        raise BlockPlanError(f"The {what} must be a positive integer, got {value!r}.")
    return number


def _non_negative_int(value: int, what: str) -> int:
    number = _as_int(value, what)
    if number < 0:
        raise BlockPlanError(f"The {what} must be zero or a positive integer, got {value!r}.")
    return number
