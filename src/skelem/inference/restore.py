"""Volume restoration: interpolate along Z, restore every XZ and YZ slice, fuse, tile, write.

``restore_volume`` works in memory (tiled by the block planner to bound the networks' working set);
``restore_to_file`` writes TIFF/HDF5/NPY atomically, or streams blocks into an OME-Zarr store that a
killed run resumes without recomputing finished blocks.

Where the parts live: the options in :mod:`skelem.config.restore`, the methods in
:mod:`skelem.inference.methods` (networks loaded by :mod:`skelem.inference.networks`), the
prepared job (factor, normaliser, block plan) in :mod:`skelem.inference.job`, and one writing
strategy per output kind in :mod:`skelem.inference.writers`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from skelem.config.restore import RestoreOptions
from skelem.errors import InputError, OutputExistsError
from skelem.events import ProgressCallback, no_progress
from skelem.inference.job import RestoreJob
from skelem.inference.provenance import restore_provenance, run_key_part
from skelem.inference.writers import OutputTarget, run_key, writer_for
from skelem.io import Volume
from skelem.models.artifact import ModelArtifact

if TYPE_CHECKING:
    from skelem.inference.dask_runner import DaskSettings

log = logging.getLogger(__name__)

__all__ = ["RestoreOptions", "restore_to_file", "restore_volume"]


def restore_volume(
    volume: Volume,
    artifact: ModelArtifact | None = None,
    factor: float | None = None,
    options: RestoreOptions | None = None,
    progress: ProgressCallback = no_progress,
    return_std: bool = False,
    input_units: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Restore ``volume`` in memory; returns float32 ``(s*(Z-1)+1, Y, X)`` (and the per-voxel std).

    Parameters
    ----------
    volume : Volume
        The anisotropic input ``(Z, Y, X)``.
    artifact : ModelArtifact, optional
        The trained model (not needed for interpolation).
    factor : float, optional
        Anisotropy factor; default from the voxel size, or the model's without one.
    options : RestoreOptions, optional
        How to restore (defaults follow the model).
    progress : callable, optional
        Receives one ``blocks`` event per block.
    return_std : bool
        Also return the per-voxel std over ``options.samples`` seeds.
    input_units : bool
        Intensities in the input's units (float32, not rounded or clipped) instead of normalised
        units (percentile 0.5 -> 0, 99.5 -> 1).

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        The restoration (and its std).
    """
    options = options or RestoreOptions()
    job = RestoreJob.prepare(volume, artifact, factor, options)
    result = job.run_in_memory(progress, return_std)
    if not input_units:
        return result
    normalizer = job.normalizer
    if return_std:
        mean, std = result
        return normalizer.denormalize(mean).astype(np.float32), std * np.float32(normalizer.scale)
    return normalizer.denormalize(result).astype(np.float32)


def restore_to_file(
    volume: Volume,
    output: str | Path,
    artifact: ModelArtifact | None = None,
    *,
    factor: float | None = None,
    options: RestoreOptions | None = None,
    overwrite: bool = False,
    progress: ProgressCallback = no_progress,
    std_output: str | Path | None = None,
    command_line: Sequence[str] | None = None,
    dask: DaskSettings | None = None,
    detail_check: dict | None = None,
) -> dict:
    """Restore ``volume`` and write it to ``output`` (format by extension), voxel size updated.

    ``.zarr`` outputs are restored block by block as Dask tasks writing into ``OUTPUT.partial``,
    renamed when complete (:mod:`skelem.inference.dask_runner`); a run killed midway resumes from
    its finished blocks. Other formats are assembled in memory and
    written atomically. Every output records how it was made
    (:func:`~skelem.inference.provenance.restore_provenance`: SkelEM version, method, factor,
    seed, options, model config and its hash, weights hashes, command line).

    Parameters
    ----------
    volume : Volume
        The anisotropic input ``(Z, Y, X)``.
    output : str or Path
        ``.tif``, ``.ome.zarr``/``.zarr`` (streamed, resumable), ``.h5`` or ``.npy``.
    artifact : ModelArtifact, optional
        The trained model (not needed for interpolation).
    factor : float, optional
        Anisotropy factor; default from the voxel size, or the model's without one.
    options : RestoreOptions, optional
        How to restore, including the output ``dtype``.
    overwrite : bool
        Replace existing outputs.
    progress : callable, optional
        Receives ``blocks`` events.
    std_output : str or Path, optional
        Where to write the per-voxel std of ``options.samples > 1`` seeds.
    command_line : sequence of str, optional
        The command that asked for the output (``sys.argv``), recorded in its metadata; ``None``
        (the default) from the Python API.
    dask : DaskSettings, optional
        OME-Zarr outputs: where the block tasks run (default: a local cluster started for the
        run, one single-threaded worker process per core).
    detail_check : dict, optional
        The detail check run before (:meth:`DetailCheck.as_dict
        <skelem.inference.detail_check.DetailCheck.as_dict>`), recorded in the outputs' metadata
        (``detail_check``) so an output written at detail 0 by it says why.

    Returns
    -------
    dict
        A JSON-friendly summary (output, shape, method...).

    Raises
    ------
    InputError
        The output is the input volume, lies inside its store or the model folder (whatever
        ``overwrite`` says), has an unknown extension, or its folder does not exist.
    OutputExistsError
        The output exists and ``overwrite`` is false.
    """
    from skelem.io import check_output_apart, restored_voxel_size
    from skelem.io.writers import check_output_format

    options = options or RestoreOptions()
    check_output_format(output)
    inputs = [("input volume", volume.source)]
    if artifact is not None:
        inputs.append(("model folder", str(artifact.directory)))
    for written in (output, std_output):
        if written is not None:
            check_output_apart(written, inputs)
    output = Path(output)
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output} exists; pass --overwrite to replace it.")
    folder = Path(str(output).split(":/")[0]).parent
    if not folder.is_dir():
        raise InputError(f"The output folder {folder} does not exist; create it first.")
    job = RestoreJob.prepare(volume, artifact, factor, options)
    out_dtype = np.dtype(np.float32) if options.dtype == "float32" else volume.dtype
    voxel = restored_voxel_size(volume.voxel_size, job.factor) if volume.voxel_size else None
    provenance = restore_provenance(job, artifact, command_line)
    if detail_check is not None:
        provenance["detail_check"] = dict(detail_check)
    target = OutputTarget(
        path=output,
        std_path=Path(std_output) if std_output is not None else None,
        dtype=out_dtype,
        voxel_size=voxel,
        unit=volume.unit,
        metadata=provenance,
        run_key=run_key(run_key_part(provenance)),
        overwrite=overwrite,
    )
    return writer_for(output).write(job, target, progress, dask)
