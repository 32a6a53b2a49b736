"""Writing a restoration: one strategy per output kind.

- :class:`FileWriter`: TIFF, HDF5 and NPY outputs are assembled in memory and written atomically.
- :class:`ZarrStreamWriter`: OME-Zarr outputs are streamed block by block into ``OUTPUT.partial``
  (with the per-voxel std of several samples in a store beside it) and renamed when complete; a
  run killed midway resumes from its finished blocks.

:func:`writer_for` picks one by the output's name (:func:`skelem.inference.outputs.is_zarr`).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skelem.errors import ConfigError
from skelem.events import ProgressCallback
from skelem.inference.job import RestoreJob
from skelem.inference.methods import RestorationMethod, block_processor
from skelem.inference.outputs import is_zarr
from skelem.inference.planner import Block
from skelem.inference.runner import finalize_store, read_done_positions, run_streaming

STREAM_BLOCK = (128, 512, 512)  # default output block of streamed (OME-Zarr) restorations
STREAM_BLOCK_JOINT = (64, 256, 256)  # ... with --fuse steps (joint sampling holds ~10 block arrays)

Shape3 = tuple[int, int, int]


@dataclass
class OutputTarget:
    """Where and how a restoration is written.

    Attributes
    ----------
    path : Path
        The output (format by extension).
    std_path : Path or None
        Where the per-voxel std of several samples goes (None: not written).
    dtype : numpy.dtype
        Data type of the output (the std is always float32).
    voxel_size : tuple of float or None
        The restored voxel size ``(z/s, y, x)``.
    unit : str
        Unit of the voxel size.
    metadata : dict
        Written with the output (how it was made).
    run_key : str
        What a resumed stream must match to reuse finished blocks.
    overwrite : bool
        Replace existing outputs.
    """

    path: Path
    std_path: Path | None
    dtype: np.dtype
    voxel_size: tuple[float, float, float] | None
    unit: str
    metadata: dict
    run_key: str
    overwrite: bool = False


def _summary(job: RestoreJob, target: OutputTarget, shape: Shape3, **state: object) -> dict:
    """The JSON-friendly summary of a write: output, shape, the ``state`` items, then the method."""
    return {
        "output": str(target.path),
        "shape": list(shape),
        **state,
        **job.method.describe(),
    }


class FileWriter:
    """TIFF, HDF5 or NPY: the restoration assembled in memory, then written atomically."""

    def write(
        self,
        job: RestoreJob,
        target: OutputTarget,
        progress: ProgressCallback,
        max_blocks: int | None = None,
    ) -> dict:
        """Restore ``job`` and write ``target``; ``max_blocks`` is ignored (one call does all).

        Parameters
        ----------
        job : RestoreJob
            The prepared restoration.
        target : OutputTarget
            Where to write.
        progress : callable
            Receives one ``blocks`` event per block.
        max_blocks : int, optional
            Ignored.

        Returns
        -------
        dict
            The JSON-friendly summary of :func:`~skelem.inference.restore.restore_to_file`.
        """
        from skelem.io import write_volume

        with_std = target.std_path is not None
        result = job.run_in_memory(progress, with_std)
        if with_std:
            result, std = result
        normalizer = job.normalizer
        common = {
            "voxel_size": target.voxel_size,
            "unit": target.unit,
            "overwrite": target.overwrite,
            "metadata": target.metadata,
        }
        write_volume(target.path, normalizer.denormalize(result, target.dtype), **common)
        summary = _summary(job, target, job.output_shape, complete=True)
        if with_std:
            write_volume(
                target.std_path, (std * np.float32(normalizer.scale)).astype(np.float32), **common
            )
            summary["std_output"] = str(target.std_path)
        return summary


class ZarrStreamWriter:
    """OME-Zarr: blocks streamed into ``OUTPUT.partial`` (std beside it), resumable."""

    def write(
        self,
        job: RestoreJob,
        target: OutputTarget,
        progress: ProgressCallback,
        max_blocks: int | None = None,
    ) -> dict:
        """Stream ``job`` into ``target``; stop after ``max_blocks`` blocks if given.

        Parameters
        ----------
        job : RestoreJob
            The prepared restoration.
        target : OutputTarget
            Where to write (the std, if any, must be OME-Zarr too).
        progress : callable
            Receives ``blocks`` events (the skipped ones first on resume).
        max_blocks : int, optional
            Blocks to process in this call; the same call again continues.

        Returns
        -------
        dict
            The summary of :func:`~skelem.inference.restore.restore_to_file`;
            ``complete`` is False while blocks remain.
        """
        block_shape = stream_block_shape(job.method)
        chunks = output_chunks(block_shape)
        plan, out_shape = job.plan(block_shape, chunks=chunks)
        partial = _partial(target.path)
        store_std = None
        if target.std_path is not None:
            store_std = self._std_writer(job, target, out_shape, chunks)
        restore_block = block_processor(job.method, store_std)

        def process(block_in: np.ndarray, block: Block) -> np.ndarray:
            return job.normalizer.denormalize(restore_block(block_in, block), target.dtype)

        run_streaming(
            job.read,
            process,
            plan,
            partial,
            out_shape,
            target.dtype,
            chunks,
            progress,
            create_store=self._creator(target, target.metadata),
            run_key=target.run_key,
            on_mismatch="restart",
            max_blocks=max_blocks,
        )
        done = len(read_done_positions(partial) or [])
        summary = _summary(
            job, target, out_shape, complete=done == len(plan), blocks_done=done, blocks=len(plan)
        )
        if done < len(plan):
            return summary
        if target.std_path is not None:  # the std first: the mean's final name is written last
            finalize_store(
                _partial(target.std_path),
                target.std_path,
                overwrite=target.overwrite,
                require_complete=False,
            )
            summary["std_output"] = str(target.std_path)
        finalize_store(partial, target.path, overwrite=target.overwrite)
        return summary

    @staticmethod
    def _creator(target: OutputTarget, metadata: dict):
        """``create(path, shape, dtype, chunks)`` of an OME-Zarr image with ``metadata``."""
        from skelem.io import create_ome_zarr

        def create(path, shape, dtype, chunks):
            voxel = target.voxel_size or (1.0, 1.0, 1.0)
            return create_ome_zarr(
                path, shape, dtype, chunks, voxel, unit=target.unit, metadata=metadata
            )

        return create

    def _std_writer(self, job: RestoreJob, target: OutputTarget, out_shape: Shape3, chunks: Shape3):
        """``store_std(block, std)`` writing into the std store beside the mean's partial."""
        if not is_zarr(target.std_path):
            raise ConfigError(
                "The per-voxel std of an OME-Zarr output must be OME-Zarr too, "
                f"not {target.std_path}."
            )
        content = f"per-voxel standard deviation over {job.options.samples} samples"
        create = self._creator(target, {**target.metadata, "content": content})
        array = std_store(
            _partial(target.std_path), _partial(target.path), out_shape, chunks, create
        )
        scale = np.float32(job.normalizer.scale)

        def store_std(block: Block, std: np.ndarray) -> None:
            array[block.write] = (std * scale).astype(np.float32)

        return store_std


def writer_for(output: str | Path) -> FileWriter | ZarrStreamWriter:
    """The writing strategy of ``output``: streamed for OME-Zarr, in memory otherwise.

    Parameters
    ----------
    output : str or Path
        The output path.

    Returns
    -------
    FileWriter or ZarrStreamWriter
    """
    return ZarrStreamWriter() if is_zarr(output) else FileWriter()


def run_key(metadata: dict) -> str:
    """The SHA-256 of an output's metadata: a resumed stream reuses blocks only when it matches.

    Parameters
    ----------
    metadata : dict
        How the output is made (method, source, model, config).

    Returns
    -------
    str
        Hex digest.
    """
    return hashlib.sha256(json.dumps(metadata, sort_keys=True, default=str).encode()).hexdigest()


def _partial(path: Path) -> Path:
    """The resumable store ``NAME.partial`` a streamed output grows under."""
    return path.with_name(path.name + ".partial")


def stream_block_shape(method: RestorationMethod) -> Shape3:
    """Output block of a streamed (OME-Zarr) restoration.

    ``--block``, else ``STREAM_BLOCK``, or ``STREAM_BLOCK_JOINT`` (an eighth of it) for joint
    sampling, which holds about ten block-sized float32 arrays (~3 GB at 128 x 512 x 512 with its
    halo, ~0.4 GB at 64 x 256 x 256).

    Parameters
    ----------
    method : RestorationMethod
        The method (its options and whether it samples jointly).

    Returns
    -------
    tuple of int
    """
    if method.options.block_shape is not None:
        return tuple(method.options.block_shape)  # type: ignore[return-value]
    return STREAM_BLOCK_JOINT if method.joint else STREAM_BLOCK


def std_store(std_partial: Path, partial: Path, shape, chunks, create):
    """The partial store of the per-voxel std, reused when the mean's run resumes.

    When the std store cannot be reused (missing, or another shape), the mean's partial store is
    removed too, so that no finished block is left without its std.

    Parameters
    ----------
    std_partial, partial : Path
        The std's and the mean's partial stores.
    shape, chunks : tuple of int
        The output's shape and chunks.
    create : callable
        ``create(path, shape, dtype, chunks) -> zarr.Array`` of a new std store.

    Returns
    -------
    zarr.Array
        The float32 std array.
    """
    import zarr

    if partial.exists() and std_partial.exists():
        try:
            array = zarr.open_group(str(std_partial), mode="r+")["0"]
            if tuple(array.shape) == tuple(shape) and array.dtype == np.float32:
                return array
        except (KeyError, ValueError, OSError, zarr.errors.BaseZarrError):
            pass
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(std_partial, ignore_errors=True)
    return create(std_partial, shape, np.float32, chunks)


def output_chunks(block_shape: Shape3, target: Shape3 = (32, 256, 256)) -> Shape3:
    """OME-Zarr chunks of about ``target`` that tile ``block_shape`` exactly.

    Each block axis is cut into the fewest equal chunks no larger than the target (a few more when
    that divides it exactly), so the planner need not round the requested block up to a chunk
    multiple: a 128-voxel block gets 128-voxel chunks, not a 256-voxel block.

    Parameters
    ----------
    block_shape : tuple of int
        The output block ``(z, y, x)``.
    target : tuple of int
        The wished chunk size.

    Returns
    -------
    tuple of int
    """

    def chunk(b: int, t: int) -> int:
        n = math.ceil(b / t)
        exact = [b // k for k in range(n, n + 4) if b % k == 0]
        return exact[0] if exact else math.ceil(b / n)

    return tuple(chunk(b, t) for b, t in zip(block_shape, target, strict=True))
