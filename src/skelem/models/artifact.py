"""The slim inference artifact in a model directory, apart from the resumable training checkpoints.

Layout of ``MODEL_DIR``::

    skelem-model.json          manifest: format, version, config, normaliser, stages, provenance
    skeleton.safetensors       frozen skeleton weights (EMA)
    refiner.safetensors        diffusion refiner weights (after alignment when that stage ran)
    diffusion_peer.safetensors pure-diffusion baseline (optional)
    checkpoints/<stage>.pt     resumable training state (optimiser, EMA, step); not needed to
                               restore
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from skelem.atomic import file_sha256, write_text_atomic
from skelem.config.models import ExperimentConfig, build_config
from skelem.data.normalize import PercentileNormalizer
from skelem.errors import ConfigError, ModelError

MANIFEST = "skelem-model.json"
FORMAT = "skelem-model"
FORMAT_VERSION = 1
WEIGHT_FILES = {
    "skeleton": "skeleton.safetensors",
    "refiner": "refiner.safetensors",
    "refiner_unaligned": "refiner_unaligned.safetensors",
    "diffusion_peer": "diffusion_peer.safetensors",
}


@dataclass
class ModelArtifact:
    """What a model directory holds: config, normaliser, trained stages and their networks.

    Parameters
    ----------
    directory : Path
        The model directory.
    config : ExperimentConfig
        The configuration the model was trained with.
    normalizer : PercentileNormalizer
        The intensity normalisation fitted on the training volume.
    stages : list of str
        Stages trained so far, in the order they finished.
    provenance : dict
        Training volume, shape, voxel size, creation time, seconds per stage.
    residual_scale : float
        The refiner's residual scale (1.0 before the refiner is trained or for older models).
    weights_sha256 : dict of str to str
        SHA-256 (hex) of each weights file, by file name, as recorded in the manifest when it was
        last saved; empty for models saved before hashes were recorded (not checked then).
    """

    directory: Path
    config: ExperimentConfig
    normalizer: PercentileNormalizer
    stages: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    residual_scale: float = 1.0  # the refiner's residual scale (set when the refiner is trained)
    weights_sha256: dict[str, str] = field(default_factory=dict)

    @property
    def factor(self) -> int:
        """The anisotropy factor the model restores."""
        return self.config.degradation.factor

    def weights_path(self, network: str) -> Path:
        """The safetensors file of ``network`` (a key of ``WEIGHT_FILES``) in the directory.

        Parameters
        ----------
        network : str
            A key of ``WEIGHT_FILES``, e.g. ``"skeleton"`` or ``"refiner"``.

        Returns
        -------
        Path
            The file's path (it need not exist).
        """
        return self.directory / WEIGHT_FILES[network]

    def has(self, network: str) -> bool:
        """Whether ``network``'s stage is trained and its weights file exists.

        Parameters
        ----------
        network : str
            A key of ``WEIGHT_FILES``; ``"refiner_unaligned"`` belongs to the alignment stage.

        Returns
        -------
        bool
        """
        stage = {"refiner_unaligned": "alignment"}.get(network, network)
        return stage in self.stages and self.weights_path(network).exists()

    def save_manifest(self) -> None:
        """Write the manifest atomically (the last thing written after each stage).

        The SHA-256 of every weights file present is recorded with it, so that a file damaged
        or modified later is refused on load (:meth:`load_network`).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self.weights_sha256 = {
            name: file_sha256(self.directory / name)
            for name in WEIGHT_FILES.values()
            if (self.directory / name).is_file()
        }
        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "stages": self.stages,
            "config": self.config.model_dump(mode="json"),
            "normalizer": self.normalizer.to_dict(),
            "provenance": self.provenance,
            "residual_scale": self.residual_scale,
            "weights_sha256": self.weights_sha256,
        }
        write_text_atomic(self.directory / MANIFEST, json.dumps(payload, indent=2))

    def load_network(self, network: str, device: torch.device | str = "cpu") -> torch.nn.Module:
        """Build the named network from the config and load its weights (eval mode, no grad).

        Parameters
        ----------
        network : str
            A key of ``WEIGHT_FILES``.
        device : torch.device or str

        Returns
        -------
        torch.nn.Module

        Raises
        ------
        ModelError
            The network is not trained in this directory, its weights file does not match the
            SHA-256 recorded in the manifest, or its weights do not load.
        """
        from skelem.models.factory import (
            build_diffusion_peer,
            build_refiner,
            build_skeleton,
            load_weights,
        )

        if not self.has(network):
            raise ModelError(
                f"The model directory {self.directory} has no trained {network.replace('_', ' ')}; "
                f"train it with `skelem train --stages {network.replace('_', '-')}`."
            )
        builders = {
            "skeleton": (build_skeleton, self.config.skeleton),
            "refiner": (build_refiner, self.config.refiner),
            "refiner_unaligned": (build_refiner, self.config.refiner),
            "diffusion_peer": (build_diffusion_peer, self.config.diffusion_peer),
        }
        build, net_cfg = builders[network]
        model = build(net_cfg)
        load_weights(model, self.checked_weights_path(network))
        model.to(device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def checked_weights_path(self, network: str) -> Path:
        """The weights file of ``network``, after checking it against the manifest's SHA-256.

        Models saved before hashes were recorded have none, and are not checked. One mismatch is
        understood rather than refused: a training run stopped after the alignment stage wrote
        the aligned refiner but before it saved the manifest leaves ``refiner.safetensors``
        changed and the recorded refiner in ``refiner_unaligned.safetensors``; that copy is
        returned (it is the refiner the manifest describes).

        Parameters
        ----------
        network : str
            A key of ``WEIGHT_FILES``.

        Returns
        -------
        Path
            The file to load.

        Raises
        ------
        ModelError
            The file is damaged (e.g. truncated) or was modified after the model was saved.
        """
        path = self.weights_path(network)
        recorded = self.weights_sha256.get(path.name)
        if recorded is None or not path.is_file() or file_sha256(path) == recorded:
            return path  # nothing recorded, or it matches; a missing file is for load_weights
        copy = self.weights_path("refiner_unaligned")
        if (
            network == "refiner"
            and "alignment" not in self.stages
            and copy.is_file()
            and file_sha256(copy) == recorded
        ):
            return copy
        raise ModelError(
            f"Model weights file {path} does not match the sha256 recorded in its manifest: "
            "the file is damaged or was modified."
        )




def load_artifact(directory: str | Path) -> ModelArtifact:
    """Open a model directory.

    Parameters
    ----------
    directory : str or Path
        A directory written by :func:`skelem.training.pipeline.train_model`.

    Returns
    -------
    ModelArtifact

    Raises
    ------
    ModelError
        The directory is missing, corrupt, foreign, or from a newer SkelEM.
    """
    directory = Path(directory)
    if directory.is_file():
        raise ModelError(f"{directory} is a file, not a model directory; give the model's folder.")
    if not directory.is_dir():
        raise ModelError(f"The model directory {directory} does not exist.")
    path = directory / MANIFEST
    if not path.exists():
        raise ModelError(f"{directory} is not a SkelEM model directory (no {MANIFEST}).")
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        raise ModelError(f"The model manifest {path} is corrupt (not valid JSON).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path} is not a SkelEM model manifest.")
    if int(payload.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(
            f"The model in {directory} was saved by a newer SkelEM; upgrade to read it."
        )
    try:
        config = build_config(payload["config"])
        normalizer = PercentileNormalizer.from_dict(payload["normalizer"])
        stages = [str(s) for s in payload.get("stages", [])]
        residual_scale = float(payload.get("residual_scale", 1.0))
        if not residual_scale > 0 or residual_scale == float("inf"):
            raise ValueError("residual_scale")
        hashes = payload.get("weights_sha256") or {}
        if not isinstance(hashes, dict):
            raise TypeError("weights_sha256")
        weights_sha256 = {str(name): str(digest).lower() for name, digest in hashes.items()}
    except ConfigError as err:
        raise ModelError(
            f"The model manifest {path} holds an invalid configuration: {err}"
        ) from None
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"The model manifest {path} is incomplete or corrupt.") from None
    provenance = dict(payload.get("provenance", {}))
    return ModelArtifact(
        directory, config, normalizer, stages, provenance, residual_scale, weights_sha256
    )
