"""Writing a restoration: one strategy per output kind.

- :class:`FileWriter`: TIFF, HDF5 and NPY outputs are assembled in memory and written atomically.
- :class:`ZarrStreamWriter`: OME-Zarr outputs are restored block by block as Dask tasks
  (:mod:`skelem.inference.dask_runner`) writing into ``OUTPUT.partial`` (with the per-voxel std of
  several samples in a store beside it), renamed when complete; a run killed midway resumes from
  its finished blocks.

:func:`writer_for` picks one by the output's name (:func:`skelem.inference.outputs.is_zarr`).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from skelem.data.normalize import PercentileNormalizer
from skelem.errors import ConfigError, InputError
from skelem.events import ProgressCallback
from skelem.inference.job import RestoreJob
from skelem.inference.methods import block_processor, build_method
from skelem.inference.outputs import is_zarr
from skelem.inference.planner import Block, choose_block_shape, largest_read_voxels
from skelem.inference.store import finalize_store, read_done_positions
from skelem.io import Volume
from skelem.memory import drop_mapped_pages, release_free_memory

if TYPE_CHECKING:
    from skelem.inference.dask_runner import DaskSettings

#: The block memory of a streamed restoration is capped at what the earlier fixed default block
#: (128 x 512 x 512 output voxels; 64 x 256 x 256 for joint sampling, which holds ~10 block
#: arrays) read with the method's halo; within it the block shape is chosen per volume.
STREAM_BLOCK = (128, 512, 512)
STREAM_BLOCK_JOINT = (64, 256, 256)
#: What a worker's second torch thread adds, relative to a second worker: 2 threads restored the
#: t2 x4 volume (skeleton, one block, in one process) in 30-32 s against 51 s with 1 thread on this
#: project's quiet 2-core machine, a 1.65x speed-up (benchmarks/RESULTS.md, issue 13).
THREAD_GAIN = 0.65

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
        dask: DaskSettings | None = None,
    ) -> dict:
        """Restore ``job`` in this process and write ``target``.

        Parameters
        ----------
        job : RestoreJob
            The prepared restoration.
        target : OutputTarget
            Where to write.
        progress : callable
            Receives one ``blocks`` event per block.
        dask : DaskSettings, optional
            Ignored (in-memory outputs run in this process).

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
    """OME-Zarr: blocks run as Dask tasks into ``OUTPUT.partial`` (std beside it); resumable."""

    def write(
        self,
        job: RestoreJob,
        target: OutputTarget,
        progress: ProgressCallback,
        dask: DaskSettings | None = None,
    ) -> dict:
        """Restore ``job`` into ``target`` as Dask tasks (:func:`.dask_runner.run_on_dask`).

        The client creates the output store and its NGFF metadata once; every worker loads the
        model once (:class:`BlockRestorer`) and writes whole chunks.

        Parameters
        ----------
        job : RestoreJob
            The prepared restoration.
        target : OutputTarget
            Where to write (the std, if any, must be OME-Zarr too).
        progress : callable
            Receives ``blocks`` events (the skipped ones first on resume).
        dask : DaskSettings, optional
            Where the blocks run (default: a local cluster, one worker process per core).

        Returns
        -------
        dict
            The summary of :func:`~skelem.inference.restore.restore_to_file`.
        """
        from skelem.inference.dask_runner import DaskSettings, connect, planned_workers, run_on_dask

        dask = dask or DaskSettings()
        block_shape = stream_block_shape(job, planned_workers(dask))
        chunks = output_chunks(block_shape)
        plan, out_shape = job.plan(block_shape, chunks=chunks)
        partial = _partial(target.path)
        std_partial = None
        if target.std_path is not None:
            std_partial = self._std_store(job, target, out_shape, chunks)
        setup = BlockRestorer.of(job, target.dtype, std_partial)
        done_before = len(read_done_positions(partial) or [])
        with connect(dask, len(plan) - done_before, planned=len(plan)) as client:
            run_on_dask(
                client,
                setup,
                plan,
                partial,
                out_shape,
                target.dtype,
                chunks,
                progress,
                create_store=self._creator(target, target.metadata),
                run_key=target.run_key,
                on_mismatch="restart",
                retries=dask.retries,
            )
        summary = _summary(
            job, target, out_shape, complete=True, blocks_done=len(plan), blocks=len(plan)
        )
        if std_partial is not None:  # the std first: the mean's final name is written last
            finalize_store(
                std_partial, target.std_path, overwrite=target.overwrite, require_complete=False
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

    def _std_store(
        self, job: RestoreJob, target: OutputTarget, out_shape: Shape3, chunks: Shape3
    ) -> Path:
        """The partial std store beside the mean's (created, or reused when the mean resumes)."""
        if not is_zarr(target.std_path):
            raise ConfigError(
                "The per-voxel std of an OME-Zarr output must be OME-Zarr too, "
                f"not {target.std_path}."
            )
        content = f"per-voxel standard deviation over {job.options.samples} samples"
        create = self._creator(target, {**target.metadata, "content": content})
        std_partial = _partial(target.std_path)
        std_store(std_partial, _partial(target.path), out_shape, chunks, create)
        return std_partial


@dataclass(frozen=True)
class BlockRestorer:
    """What a Dask worker needs to restore blocks; called once per worker, it loads the model.

    Picklable: the input by its URI (or, for an in-memory volume, its array), the model by its
    folder, the options, the client's normaliser (so every worker maps intensities alike).

    Attributes
    ----------
    source : str or numpy.ndarray
        The input volume's URI, or its array.
    model_dir : str or None
        The model folder (None: interpolation).
    factor : int
        Anisotropy factor.
    options : RestoreOptions
        The restore options.
    normalizer : PercentileNormalizer
        The client's normaliser.
    dtype : str
        The output's dtype.
    std_store : str or None
        The partial store of the per-voxel std (several samples).
    """

    source: str | np.ndarray
    model_dir: str | None
    factor: int
    options: object
    normalizer: PercentileNormalizer
    dtype: str
    std_store: str | None = None

    @classmethod
    def of(cls, job: RestoreJob, dtype: np.dtype, std_store: Path | None) -> BlockRestorer:
        """The restorer of ``job``'s blocks, writing ``dtype`` (and the std into ``std_store``).

        Raises
        ------
        InputError
            The volume is neither a file the workers can open nor an in-memory array.
        """
        volume = job.volume
        source: str | np.ndarray = volume.source
        if not Path(volume.source.split(":/")[0]).exists():
            if not isinstance(volume.data, np.ndarray):
                raise InputError(
                    f"The input {volume.source} is neither a file nor an in-memory array, so "
                    "Dask workers cannot read it; write it to a file first."
                )
            source = volume.data
        return cls(
            source=source,
            model_dir=job.model_dir,
            factor=job.factor,
            options=job.options,
            normalizer=job.normalizer,
            dtype=np.dtype(dtype).str,
            std_store=str(std_store) if std_store is not None else None,
        )

    def __call__(self):
        """``(read_block, process)`` of this worker: the input opened, the model loaded."""
        import zarr

        from skelem.io import open_volume
        from skelem.models.artifact import load_artifact

        if isinstance(self.source, str):
            volume = open_volume(self.source)
        else:
            volume = Volume(self.source)
        artifact = load_artifact(self.model_dir) if self.model_dir else None
        method = build_method(artifact, self.factor, self.options)
        job = RestoreJob(volume, method, self.normalizer, self.options)
        store_std = None
        if self.std_store is not None:
            std_array = zarr.open_group(self.std_store, mode="r+")["0"]
            scale = np.float32(self.normalizer.scale)

            def store_std(block: Block, std: np.ndarray) -> None:
                std_array[block.write] = (std * scale).astype(np.float32)

        restore_block = block_processor(method, store_std)
        dtype = np.dtype(self.dtype)

        def process(block_in: np.ndarray, block: Block) -> np.ndarray:
            restored = restore_block(block_in, block)
            release_free_memory()  # the networks' freed buffers, before the output's copies
            return job.normalizer.denormalize(restored, dtype)

        def read(region):
            block_in = job.read(region)  # normalised: a new array, not a view of the input
            drop_mapped_pages(volume.data)  # a memory-mapped input's read pages leave the RSS
            return block_in

        return read, process


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


def stream_block_shape(job: RestoreJob, workers: int = 1) -> Shape3:
    """Output block of a streamed (OME-Zarr) restoration.

    ``--block`` when given; else the block that restores ``job`` fastest on ``workers`` worker
    processes with a read region no larger than the fixed ``STREAM_BLOCK``'s (``STREAM_BLOCK_JOINT``
    for joint sampling, which holds about ten block-sized float32 arrays), so a block never needs
    more memory than before; see
    :func:`~skelem.inference.planner.choose_block_shape`.

    Parameters
    ----------
    job : RestoreJob
        The prepared restoration (its volume, factor, method and options).
    workers : int
        Worker processes that will restore blocks at once.

    Returns
    -------
    tuple of int
    """
    method = job.method
    if method.options.block_shape is not None:
        return tuple(method.options.block_shape)  # type: ignore[return-value]
    budget = largest_read_voxels(
        STREAM_BLOCK_JOINT if method.joint else STREAM_BLOCK, job.factor, method.halo, method.align
    )
    return choose_block_shape(
        job.volume.shape,
        job.factor,
        method.halo,
        method.align,
        max_read_voxels=budget,
        workers=workers,
        thread_gain=THREAD_GAIN,
        chunk_of=output_chunks,
    )


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
