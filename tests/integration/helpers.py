"""Helpers shared by the integration tests (configuration, threads, message checks)."""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from skelem.config.models import ExperimentConfig, build_config
from skelem.io import Volume
from skelem.models.artifact import ModelArtifact
from skelem.models.device import torch_threads

FACTOR = 4
PHANTOM_SHAPE = (48, 64, 64)  # isotropic ground truth (Z, Y, X); 12 slices once degraded x4
#: Iterations of the session skeleton: the smallest budget at which it beats cubic interpolation
#: by a clear margin with this seed and learning rate (see test_skeleton_stage.py).
SKELETON_ITERATIONS = 40
SKELETON_LEARNING_RATE = 5e-3


def tiny_config(**overrides: dict) -> ExperimentConfig:
    """The integration-test configuration: x4, 8-channel skeleton and 4-channel refiner/peer,
    depth 2.

    Each keyword updates one section, e.g. ``tiny_config(skeleton_training={"iterations": 12})``.
    The diffusion settings are the defaults (T = 1000, t0 = 400, 2 steps).
    """
    data: dict = {
        "degradation": {"factor": FACTOR},
        "skeleton": {"channels": 8, "depth": 2},
        "refiner": {"channels": 4, "depth": 2},
        "diffusion_peer": {"channels": 4, "depth": 2},
        "skeleton_training": {
            "iterations": SKELETON_ITERATIONS,
            "batch_size": 8,
            "patch_size": 32,
            "learning_rate": SKELETON_LEARNING_RATE,
            "checkpoint_every": 1000,
            "seed": 0,
        },
        "refiner_training": {"iterations": 40, "batch_size": 4, "patch_size": 32, "seed": 0},
        "alignment_training": {"iterations": 6, "batch_size": 2, "patch_size": 32, "seed": 0},
        "device": "cpu",
    }
    for section, values in overrides.items():
        data[section] = {**data.get(section, {}), **values}
    return build_config(data)


def single_thread() -> contextlib.AbstractContextManager[None]:
    """Torch on one thread inside the block (see :func:`skelem.models.device.torch_threads`)."""
    return torch_threads(1)


def assert_one_sentence(message: str) -> None:
    """A user-facing message: one line, one sentence ending with a full stop, no traceback."""
    assert message, "empty error message"
    assert "\n" not in message, f"multi-line message: {message!r}"
    assert "Traceback" not in message and "torch" not in message.lower(), message
    assert message.endswith("."), f"does not end with a full stop: {message!r}"
    # a second sentence would start after '.', '!' or '?' with a capital letter
    assert not re.search(r"[.!?]\s+[A-Z]", message[:-1]), f"more than one sentence: {message!r}"


def measured(n_rows: int, factor: int = FACTOR, first_row: int = 0) -> np.ndarray:
    """Boolean ``(n_rows,)``: output rows that are acquired slices (global row multiple of
    factor)."""
    return (first_row + np.arange(n_rows)) % factor == 0


@dataclass
class Phantom:
    """An isotropic EM phantom and its x4 anisotropic acquisition."""

    truth: np.ndarray  # (48, 64, 64) float32 in [0, 1]
    volume: Volume  # (12, 64, 64): slices 0, 4, ..., 44 of the truth, voxel size (16, 4, 4) nm

    @property
    def truth_on_output_grid(self) -> np.ndarray:
        """The ground truth on the restored grid ``(s*(Z-1)+1, Y, X)`` (rows 0..44)."""
        return self.truth[: FACTOR * (self.volume.shape[0] - 1) + 1]


@dataclass
class TrainedModel:
    """The session model and what the tests need to know about how it was trained."""

    directory: Path
    artifact: ModelArtifact
    phantom: Phantom
    skeleton_sha256_after_skeleton_stage: str
    skeleton_sha256_after_alignment_stage: str
    skeleton_state_after_skeleton_stage: dict[str, torch.Tensor]
    #: the in-memory skeletons the refiner and alignment stages ran with, as they were afterwards
    skeletons_used_by_later_stages: list[torch.nn.Module] = field(default_factory=list)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
