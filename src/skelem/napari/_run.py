"""What the restoration widget runs, without Qt: train or load a model, then restore a volume.

The widget builds a :class:`RestoreRequest` in the GUI thread (where bad values are refused in
one sentence) and calls :func:`run_request` in a worker thread. A run stops at its next progress
event once ``cancel`` is set (:class:`RunCancelled` is raised inside the progress callback).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skelem.config.choices import INTERPOLATION_METHODS, METHODS
from skelem.config.models import parse_profile
from skelem.errors import ConfigError
from skelem.events import ProgressCallback, ProgressEvent
from skelem.io import Volume

log = logging.getLogger(__name__)

#: where the model comes from
MODEL_SOURCES = {
    "pretrained": "Pretrained FIB-SEM model",
    "folder": "Model folder",
    "train-quick": "Train on this layer (quick budget)",
    "train-default": "Train on this layer (default budget)",
}
#: the method list the widget offers ("default": SkelEM when the model has a refiner)
METHOD_CHOICES = ("default", *METHODS)


class RunCancelled(Exception):
    """The user cancelled the run (raised inside a progress callback)."""


@dataclass
class RestoreRequest:
    """One run of the widget.

    Attributes
    ----------
    volume : Volume
        The anisotropic ``(Z, Y, X)`` input (the image layer's data and voxel size).
    factor : int
        Integer anisotropy factor (2-16).
    profile : str
        Slice profile (``none``, ``box[:T]``, ``gaussian:SIGMA``); used when training.
    model_source : str
        A key of :data:`MODEL_SOURCES`; ignored for interpolation methods.
    model_dir : str
        The model folder to load (``folder``) or to train into (``train-*``; empty: a new
        temporary folder).
    method : str
        One of :data:`METHOD_CHOICES`.
    samples : int
        Seeds averaged; more than 1 also returns the per-voxel std.
    seed : int
        Seed of the sampler's noise.
    """

    volume: Volume
    factor: int
    profile: str = "none"
    model_source: str = "pretrained"
    model_dir: str = ""
    method: str = "default"
    samples: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model_source not in MODEL_SOURCES:
            raise ConfigError(f"Unknown model source {self.model_source!r}.")
        if self.method not in METHOD_CHOICES:
            raise ConfigError(
                f"Unknown method {self.method!r}; choose one of {', '.join(METHODS)}."
            )
        parse_profile(self.profile)  # refused here, before any work

    @property
    def needs_model(self) -> bool:
        """False for the interpolation methods, which need no network."""
        return self.method not in INTERPOLATION_METHODS


@dataclass
class RestoreResult:
    """What a run produced.

    Attributes
    ----------
    restored : numpy.ndarray
        float32 ``(s*(Z-1)+1, Y, X)`` in the input's intensity units.
    std : numpy.ndarray or None
        Per-voxel std over the samples (input units), when more than one sample was drawn.
    factor : int
    method : str
        The method that ran.
    model_dir : str or None
        The model folder used or trained.
    metadata : dict
        What the layer records about the run.
    notes : list of str
        Sentences for the user about how the run went (e.g. the pretrained detail check).
    """

    restored: np.ndarray
    std: np.ndarray | None
    factor: int
    method: str
    model_dir: str | None = None
    metadata: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def cancellable(progress: ProgressCallback, cancel: threading.Event) -> ProgressCallback:
    """``progress`` that raises :class:`RunCancelled` first when ``cancel`` is set.

    Parameters
    ----------
    progress : callable
        Receives every event while the run goes on.
    cancel : threading.Event
        Set (from any thread) to stop the run at its next event.

    Returns
    -------
    callable
    """

    def forward(event: ProgressEvent) -> None:
        if cancel.is_set():
            raise RunCancelled
        progress(event)

    return forward


def training_config(factor: int, profile: str, budget: str):
    """The experiment config of the widget's training: the quick or the default budget.

    Parameters
    ----------
    factor : int
    profile : str
        Slice profile text.
    budget : {"quick", "default"}
        ``quick``: the budget of ``skelem demo`` (300/300/30 iterations); ``default``: the
        budget of ``skelem train``.

    Returns
    -------
    ExperimentConfig
    """
    from skelem.config.models import build_config, sampling_defaults
    from skelem.evaluation.benchmark import Budget

    degradation = parse_profile(profile)
    if budget == "quick":
        return Budget.quick().config(factor, degradation)
    return build_config(
        {"degradation": {"factor": factor, **degradation}, "diffusion": sampling_defaults(factor)}
    )


def _stages(method: str) -> list[str]:
    if method == "skeleton":
        return ["skeleton"]
    if method == "diffusion":
        return ["skeleton", "diffusion_peer"]
    return ["skeleton", "refiner", "alignment"]


def obtain_model(request: RestoreRequest, progress: ProgressCallback):
    """The model of ``request``: trained on its volume, loaded from a folder, or pretrained.

    Parameters
    ----------
    request : RestoreRequest
    progress : callable
        Receives the training stages' events.

    Returns
    -------
    ModelArtifact
    """
    from skelem.models.artifact import load_artifact
    from skelem.models.pretrained import pretrained_model_dir

    source = request.model_source
    if source == "pretrained":
        return load_artifact(pretrained_model_dir(request.factor))
    if source == "folder":
        if not request.model_dir:
            raise ConfigError("Choose a model folder, or another model source.")
        return load_artifact(request.model_dir)
    from skelem.training.pipeline import train_model

    model_dir = request.model_dir or tempfile.mkdtemp(prefix="skelem-model-")
    config = training_config(request.factor, request.profile, source.removeprefix("train-"))
    log.info("training a %s model into %s", source, model_dir)
    artifact = train_model(request.volume, model_dir, config, _stages(request.method), progress)
    from skelem.inference.detail_check import record_reference

    record_reference(artifact, request.volume)  # for restoring other volumes with this folder
    return artifact


def run_request(
    request: RestoreRequest, progress: ProgressCallback, cancel: threading.Event | None = None
) -> RestoreResult:
    """Train or load the model, then restore the volume in memory (input intensity units).

    Parameters
    ----------
    request : RestoreRequest
    progress : callable
        Receives training and ``blocks`` events.
    cancel : threading.Event, optional
        Set to stop the run at its next progress event.

    Returns
    -------
    RestoreResult

    Raises
    ------
    RunCancelled
        ``cancel`` was set.
    SkelEMError
        Bad input, model or option (one sentence).
    """
    from skelem.config.restore import RestoreOptions, check_sampling
    from skelem.inference.detail_check import check_model_detail, check_pretrained_detail
    from skelem.inference.methods import default_method
    from skelem.inference.restore import restore_volume

    cancel = cancel or threading.Event()
    progress = cancellable(progress, cancel)
    artifact = obtain_model(request, progress) if request.needs_model else None
    if cancel.is_set():
        raise RunCancelled
    method = request.method if request.method != "default" else default_method(artifact)
    options = RestoreOptions(method=method, samples=request.samples, seed=request.seed)
    detail_check = None
    if artifact is not None:
        check_sampling(options, method, artifact.config.diffusion)
    if request.needs_model and request.model_source == "pretrained":
        from skelem.models.pretrained import PRETRAINED_NORMALIZE

        options.normalize = PRETRAINED_NORMALIZE  # as `skelem restore` without --model
        detail_check = check_pretrained_detail(request.volume, artifact, options)
    elif request.needs_model and request.model_source == "folder":
        detail_check = check_model_detail(request.volume, artifact, options)
    if detail_check is not None and not detail_check.passed:
        log.warning("%s", detail_check.message())
    keep_std = request.samples > 1
    out = restore_volume(
        request.volume,
        artifact,
        request.factor,
        options,
        progress,
        return_std=keep_std,
        input_units=True,
    )
    if cancel.is_set():
        raise RunCancelled
    restored, std = out if keep_std else (out, None)
    model_dir = str(Path(artifact.directory)) if artifact is not None else None
    return RestoreResult(
        restored=restored,
        std=std,
        factor=request.factor,
        method=method,
        model_dir=model_dir,
        metadata={
            "skelem_method": method,
            "skelem_factor": request.factor,
            "skelem_model": model_dir,
            "skelem_samples": request.samples,
            "skelem_seed": request.seed,
            **({"skelem_detail_check": detail_check.as_dict()} if detail_check else {}),
        },
        notes=[detail_check.message()] if detail_check else [],
    )
