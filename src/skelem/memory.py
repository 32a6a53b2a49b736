"""The C library's allocator: keep freed memory for reuse, give it back between blocks.

Torch-free, so the command line can set it up before anything heavy is imported.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

#: glibc ``mallopt`` parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - musl and others have no mallopt
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def set_malloc_reuse(
    trim_bytes: int = 1 << 30, mmap_bytes: int = 32 << 20, arenas: int | None = 2
) -> bool:
    """Ask glibc to keep freed memory for reuse instead of returning it to the kernel at once.

    A training step or a network call allocates and frees the same large activation buffers again
    and again. With glibc's defaults (and far more with the ``MALLOC_TRIM_THRESHOLD_=65536`` Dask's
    nanny gives its workers) buffers are unmapped or trimmed when freed, so the next call faults
    the same pages in again: a page-fault storm, the kernel zeroing every page each time. Fixing
    the trim threshold at ``trim_bytes`` and the mmap threshold at ``mmap_bytes`` keeps them. The
    peak is unchanged; :func:`release_free_memory` still gives the memory back after each block.
    A no-op returning False where glibc is not the C library.

    Parameters
    ----------
    trim_bytes : int
        Free memory kept at the heap top before glibc returns it.
    mmap_bytes : int
        Allocations at least this large get their own mapping (glibc's maximum is 32 MiB).
    arenas : int or None
        At most this many malloc arenas (None: glibc's default, 8 per core). Every thread that
        allocates under contention gets an arena of its own, and with the trim threshold above
        each keeps its freed buffers: the two cross-plane passes, Dask's threads and zarr's
        each held their own copy of the activations' high-water mark. Two (one per pass) cut
        the peak of a one-block t2 x4 restore from 847 to 743 MiB at the same speed
        (RESULTS.md, issue 13); the allocations that matter are a few per network layer, so
        the lock is not contended.

    Returns
    -------
    bool
        Whether every setting was applied.
    """
    libc = _libc()
    if libc is None:
        return False
    ok_trim = libc.mallopt(_M_TRIM_THRESHOLD, int(trim_bytes)) == 1
    ok_mmap = libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_bytes)) == 1
    ok_arenas = arenas is None or libc.mallopt(_M_ARENA_MAX, int(arenas)) == 1
    return ok_trim and ok_mmap and ok_arenas


def release_free_memory() -> None:
    """Give the heap memory freed by the last block back to the operating system.

    Without it glibc keeps the freed block buffers (hundreds of MB of torch activations and slice
    arrays, allocated in varying sizes) in fragmented arenas, and the resident size of a long run
    creeps up block after block: measured 478 -> 812 MiB between blocks 1 and 8 of a
    63 x 500 x 250 restoration (benchmarks/RESULTS.md, peak memory).
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def drop_mapped_pages(array: object) -> bool:
    """Unmap the pages of a memory-mapped input that this process has read (they stay in the
    page cache, and are read back from it when touched again).

    NPY and plain TIFF inputs are memory-mapped. Every page a block reads stays in the process's
    resident size, so a worker's memory grew with the part of the input it had read, until Dask
    restarted it at its memory limit (a 63 x 1728 x 1728 input: 483 -> 580 MiB per worker and
    restarts, benchmarks/RESULTS.md, issue 14). Called after each block's read.

    Parameters
    ----------
    array : object
        The input's array: a ``numpy.memmap`` (or a view of one), something holding one as
        ``.array`` (:class:`skelem.io.lazy.AxisView`), or anything else (nothing to do).

    Returns
    -------
    bool
        Whether a mapping was found and its pages dropped.
    """
    import mmap

    import numpy as np

    seen = 0
    while not isinstance(array, np.ndarray) and hasattr(array, "array") and seen < 4:
        array, seen = array.array, seen + 1
    mapping = getattr(array, "_mmap", None) if isinstance(array, np.memmap) else None
    if mapping is None or not hasattr(mapping, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return False
    try:
        mapping.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # a closed mapping, a platform without it
        return False
    return True
