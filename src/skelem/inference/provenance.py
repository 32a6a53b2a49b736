"""How a restored output was made: the metadata every written restoration carries.

:func:`restore_provenance` builds one JSON-friendly dict, stored by the writers of
:mod:`skelem.io.writers` with the output (ImageJ ``Info`` of a TIFF, ``attrs["skelem"]`` of an
OME-Zarr, the ``skelem`` attribute of an HDF5 dataset) and read back as
:attr:`Volume.metadata <skelem.io.volume.Volume.metadata>`. An NPY file holds no metadata: its
record goes to a JSON sidecar beside it (``out.npy.json``,
:func:`skelem.io.sidecar.write_npy_sidecar`, read by :func:`skelem.io.sidecar.read_npy_provenance`).
Its keys:

``skelem_version``
    The SkelEM that wrote the output.
``method``, ``factor``, ``seed``
    The method that ran (the default resolved), the integer anisotropy factor and the noise seed.
``restore``
    The method's own description (:meth:`RestorationMethod.describe`: sampling settings...).
``options``
    Every restore option (:class:`~skelem.config.restore.RestoreOptions`) as given.
``source``, ``model``
    The input volume's URI and the model folder (``None`` without a model).
``config``, ``config_sha256``
    The model's full experiment config and the SHA-256 of its canonical JSON
    (:func:`skelem.config.hashing.config_sha256`); ``None`` without a model.
``weights_sha256``
    SHA-256 of each weights file of the model, by file name, as recorded in its manifest
    (computed from the files for models saved before hashes were recorded); ``None`` without one.
``command_line``
    ``sys.argv`` of the ``skelem`` command that wrote the output; ``None`` from the Python API.
``detail_check`` (only when one ran)
    The detail check's measures and verdict (:mod:`skelem.inference.detail_check`): a failed
    check is why ``options.detail`` reads 0. Added by
    :func:`skelem.inference.restore.restore_to_file`, not part of the run key.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import skelem
from skelem.config.hashing import config_sha256
from skelem.inference.job import RestoreJob
from skelem.models.artifact import WEIGHT_FILES, ModelArtifact, file_sha256

log = logging.getLogger(__name__)

#: The keys of :func:`restore_provenance` that say what the pixels are; a resumed streamed
#: output reuses finished blocks only when they match (:func:`run_key_part`). The command line,
#: the version and the options that change no pixel (device, batch size...) are left out.
RUN_KEY_FIELDS = ("restore", "source", "model", "config", "weights_sha256")


def weights_sha256(artifact: ModelArtifact) -> dict[str, str]:
    """SHA-256 of each weights file of ``artifact``, by file name.

    Parameters
    ----------
    artifact : ModelArtifact
        The model.

    Returns
    -------
    dict of str to str
        The manifest's record; for a model saved before hashes were recorded, the hashes of the
        weights files present in its folder.
    """
    if artifact.weights_sha256:
        return dict(sorted(artifact.weights_sha256.items()))
    files = (artifact.directory / name for name in WEIGHT_FILES.values())
    return {path.name: file_sha256(path) for path in files if path.is_file()}


def restore_provenance(
    job: RestoreJob,
    artifact: ModelArtifact | None,
    command_line: Sequence[str] | None = None,
) -> dict:
    """The metadata of an output restored by ``job`` (the keys are listed in the module's doc).

    Parameters
    ----------
    job : RestoreJob
        The prepared restoration (volume, method, options).
    artifact : ModelArtifact or None
        The model (``None`` for interpolation).
    command_line : sequence of str, optional
        The command line that asked for the output (``sys.argv``); ``None`` from the Python API.

    Returns
    -------
    dict
        JSON-friendly.
    """
    config = artifact.config.model_dump(mode="json") if artifact is not None else None
    return {
        "skelem_version": skelem.__version__,
        "method": job.method.method,
        "factor": job.factor,
        "seed": job.options.seed,
        "restore": job.method.describe(),
        "options": job.options.model_dump(mode="json"),
        "source": job.volume.source,
        "model": str(artifact.directory) if artifact is not None else None,
        "config": config,
        "config_sha256": config_sha256(config) if config is not None else None,
        "weights_sha256": weights_sha256(artifact) if artifact is not None else None,
        "command_line": [str(arg) for arg in command_line] if command_line is not None else None,
    }


def run_key_part(provenance: dict) -> dict:
    """The :data:`RUN_KEY_FIELDS` of an output's provenance, whose hash is its run key.

    A resumed stream reuses finished blocks only when this part matches, so a run resumed with
    another input, model, config, weights or sampling restarts rather than mixing blocks.

    Parameters
    ----------
    provenance : dict
        From :func:`restore_provenance`.

    Returns
    -------
    dict
    """
    return {key: provenance.get(key) for key in RUN_KEY_FIELDS}
