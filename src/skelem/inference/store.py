"""The resumable output store of a streamed run: its progress file, fingerprint and final rename.

After each block's write region is stored in the zarr array, its position in the plan is recorded
as done in a small JSON sidecar file inside the store directory, replaced atomically
(:func:`skelem.atomic.write_text_atomic`). The sidecar also holds a fingerprint of the plan, output
shape, dtype, chunks and a caller-provided ``run_key`` (which should name the model and its
settings).
:func:`skelem.inference.dask_runner.run_on_dask` uses these helpers, in the client only (the
workers write chunks, never the progress file); :func:`finalize_store` removes the sidecar of a
finished store and renames it to its final name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import zarr

from skelem.atomic import remove_path, write_text_atomic
from skelem.errors import OutputExistsError
from skelem.inference.planner import Block

__all__ = ["PROGRESS_FILE", "finalize_store", "plan_fingerprint", "read_done_positions"]

logger = logging.getLogger(__name__)

PROGRESS_FILE = "skelem-blocks-done.json"
"""Default name of the sidecar progress file inside a partial output store."""

_PROGRESS_FORMAT = "skelem-block-progress"
_PROGRESS_VERSION = 1

Slices3 = tuple[slice, slice, slice]
CreateStore = Callable[[Path, tuple[int, ...], np.dtype, tuple[int, ...]], zarr.Array]


def finalize_store(
    partial_path: str | os.PathLike[str],
    final_path: str | os.PathLike[str],
    overwrite: bool = False,
    done_key: str = PROGRESS_FILE,
    require_complete: bool = True,
) -> Path:
    """Remove the progress file of a finished store and rename it to its final name.

    Parameters
    ----------
    partial_path : path
        The store written by :func:`~skelem.inference.dask_runner.run_on_dask`
        (e.g. ``out.zarr.partial``).
    final_path : path
        The final name (e.g. ``out.zarr``), in the same file system.
    overwrite : bool, optional
        Replace an existing ``final_path``. The old output is moved aside first and deleted only
        after the rename succeeded.
    done_key : str, optional
        File name of the progress file (:data:`PROGRESS_FILE`).
    require_complete : bool, optional
        Refuse (``ValueError``) when the progress file says some blocks are not done.

    Returns
    -------
    pathlib.Path
        ``final_path``.

    Raises
    ------
    OutputExistsError
        When ``final_path`` exists and ``overwrite`` is false.
    """
    partial = Path(partial_path)
    final = Path(final_path)
    progress_path = partial / done_key
    if not partial.exists():
        raise FileNotFoundError(f"The partial output {partial} does not exist.")
    if require_complete and progress_path.exists():
        state = _read_state(progress_path)
        if state is None:
            raise ValueError(
                f"The progress file {progress_path} is unreadable; the output may be incomplete."
            )
        done = _positions_from_ranges(state["done"], state["n_blocks"])
        if not done.all():
            raise ValueError(
                f"The output {partial} is incomplete ({int(done.sum())} of {done.size} blocks "
                "done)."
            )
    if final.exists() and not overwrite:
        raise OutputExistsError(
            f"The output {final} exists; choose another name or allow overwriting."
        )
    from skelem.io.pyramid import build_pyramid  # downsampled levels, resumable (issue 16)

    build_pyramid(partial, if_image=True)
    progress_path.unlink(missing_ok=True)
    for leftover in partial.glob(f".{done_key}.partial-*"):  # a write killed midway
        leftover.unlink(missing_ok=True)
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, trash)
        os.replace(partial, final)
        remove_path(trash)
    else:
        os.replace(partial, final)
    return final


def plan_fingerprint(
    plan: Sequence[Block],
    out_shape: Sequence[int],
    dtype: np.dtype | type,
    chunks: Sequence[int],
    run_key: str = "",
) -> str:
    """A SHA-256 hex digest of everything that determines the values a run writes.

    Parameters
    ----------
    plan : sequence of Block
        The block plan (all read, crop and write slices, in order).
    out_shape, dtype, chunks
        The output array's geometry.
    run_key : str
        Caller-provided description of the model and settings.
    """

    def slices(sls: Slices3) -> list[list[int]]:
        return [[s.start, s.stop] for s in sls]

    content = {
        "version": _PROGRESS_VERSION,
        "out_shape": [int(n) for n in out_shape],
        "dtype": np.dtype(dtype).str,
        "chunks": [int(n) for n in chunks],
        "run_key": run_key,
        "plan": [[list(b.index), slices(b.read), slices(b.crop), slices(b.write)] for b in plan],
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def read_done_positions(
    store_path: str | os.PathLike[str], done_key: str = PROGRESS_FILE
) -> list[int] | None:
    """Plan positions recorded as done in a partial store, or ``None`` without a readable file.

    Parameters
    ----------
    store_path : path
        The partial store.
    done_key : str, optional
        File name of its progress file.

    Returns
    -------
    list of int or None
    """
    state = _read_state(Path(store_path) / done_key)
    if state is None:
        return None
    return [
        int(i) for i in np.flatnonzero(_positions_from_ranges(state["done"], state["n_blocks"]))
    ]


# --------------------------------------------------------------------------------------------
# helpers


def check_store_array(
    array: zarr.Array,
    out_shape: tuple[int, int, int],
    dtype: np.dtype,
    plan: Sequence[Block],
    path: Path,
) -> None:
    """The array has the expected shape and dtype, and no two blocks share a stored chunk/shard.

    Parameters
    ----------
    array : zarr.Array
        The stored array.
    out_shape : tuple of int
        The expected shape.
    dtype : numpy.dtype
        The expected dtype.
    plan : sequence of Block
        The blocks whose write regions must be chunk-aligned.
    path : Path
        The store (for the message).

    Raises
    ------
    ValueError
        When one of these does not hold.
    """
    if tuple(array.shape) != out_shape or np.dtype(array.dtype) != dtype:
        raise ValueError(
            f"The array in {path} has shape {tuple(array.shape)} and dtype {array.dtype}, "
            f"expected {out_shape} and {dtype}."
        )
    unit = getattr(array, "shards", None) or array.chunks
    for block in plan:
        for sl, c, n in zip(block.write, unit, out_shape, strict=True):
            if sl.start % c or (sl.stop % c and sl.stop != n):
                raise ValueError(
                    f"The write region {block.write} of block {block.index} is not aligned to the "
                    f"stored chunks {tuple(unit)}; plan the blocks with the same chunks."
                )


def create_store_array(
    path: Path,
    shape: tuple[int, int, int],
    dtype: np.dtype,
    chunks: tuple[int, int, int],
    create_store: CreateStore | None,
) -> zarr.Array:
    """Create the output array: with ``create_store`` if given, else a plain zarr v3 array.

    Parameters
    ----------
    path : Path
        The store to create.
    shape, dtype, chunks
        The array's geometry.
    create_store : callable or None
        ``create_store(path, shape, dtype, chunks) -> zarr.Array``.

    Returns
    -------
    zarr.Array
    """
    if create_store is not None:
        return create_store(path, shape, dtype, chunks)
    return zarr.create_array(store=str(path), shape=shape, dtype=dtype, chunks=chunks, fill_value=0)


def open_for_resume(
    store_path: Path, progress_path: Path, fingerprint: str, on_mismatch: str
) -> tuple[zarr.Array | None, np.ndarray]:
    """Open an existing store whose progress file matches ``fingerprint``, or clear the way.

    Parameters
    ----------
    store_path, progress_path : Path
        The store and its progress file.
    fingerprint : str
        The plan's fingerprint.
    on_mismatch : {"error", "restart"}
        Refuse a store of another run, or delete it.

    Returns
    -------
    array : zarr.Array or None
        The store's array (None: nothing to resume).
    done : numpy.ndarray of bool
        The done positions.
    """
    if on_mismatch not in ("error", "restart"):
        raise ValueError(f"on_mismatch must be 'error' or 'restart', got {on_mismatch!r}.")
    if not store_path.exists():
        return None, np.zeros(0, dtype=bool)
    state = _read_state(progress_path)
    if state is not None and state.get("fingerprint") == fingerprint:
        array = zarr.open_array(store=str(store_path), path=state["array_path"], mode="r+")
        return array, _positions_from_ranges(state["done"], state["n_blocks"])
    reason = "no progress file" if state is None else "a progress file from another run or plan"
    if on_mismatch == "restart":
        logger.warning("removing %s (%s) and starting over", store_path, reason)
        remove_path(store_path)
        return None, np.zeros(0, dtype=bool)
    raise OutputExistsError(
        f"The partial output {store_path} exists with {reason}; delete it or restart the run."
    )


def write_progress(
    path: Path, fingerprint: str, run_key: str, array_path: str, done: np.ndarray
) -> None:
    """Write the progress file atomically (:func:`skelem.atomic.write_text_atomic`).

    Parameters
    ----------
    path : Path
        The progress file.
    fingerprint : str
        The plan's fingerprint (:func:`plan_fingerprint`).
    run_key : str
        The caller's description of the run.
    array_path : str
        The array's path inside the store.
    done : numpy.ndarray of bool
        Which plan positions are done.
    """
    state = {
        "format": _PROGRESS_FORMAT,
        "version": _PROGRESS_VERSION,
        "fingerprint": fingerprint,
        "run_key": run_key,
        "array_path": array_path,
        "n_blocks": int(done.size),
        "done": _ranges_from_positions(done),
    }
    write_text_atomic(path, json.dumps(state))


def _read_state(path: Path) -> dict | None:
    """The progress file's content, or ``None`` when it is missing or not a valid progress file."""
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("format") != _PROGRESS_FORMAT:
        return None
    if not all(key in state for key in ("fingerprint", "array_path", "n_blocks", "done")):
        return None
    return state


def _ranges_from_positions(done: np.ndarray) -> list[list[int]]:
    """``[[start, stop], ...]`` runs of ``True`` in a boolean vector (compact for ordered runs)."""
    padded = np.concatenate([[False], done.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _positions_from_ranges(ranges: list[list[int]], n: int) -> np.ndarray:
    done = np.zeros(int(n), dtype=bool)
    for start, stop in ranges:
        done[int(start) : int(stop)] = True
    return done
