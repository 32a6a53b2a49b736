"""``skelem train`` killed after its first checkpoint continues where it stopped when run again.

The loop draws every batch from generators seeded by (seed, step) and checkpoints the model, EMA
and optimiser, so the resumed run must end with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from .cli_helpers import SUBPROCESS_ENV, assert_success, skelem, skelem_command
from .conftest import Volumes

CHECKPOINT_EVERY = 2
ITERATIONS = 6


def _train_args(volume: Path, model_dir: Path, config: Path) -> list[object]:
    return [
        "train",
        volume,
        "-o",
        model_dir,
        "--config",
        config,
        "--stages",
        "skeleton",
        "--iterations",
        ITERATIONS,
        "--patch-size",
        16,
        "--seed",
        5,
        "-q",
    ]


def _kill_after_first_checkpoint(args: list[object], checkpoint: Path, timeout: float = 90) -> int:
    """Start ``skelem ARGS``, SIGKILL it once ``checkpoint`` exists; return the step it holds."""
    process = subprocess.Popen(
        skelem_command(*args),
        env=SUBPROCESS_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while not checkpoint.exists():
            assert process.poll() is None, (
                f"training ended before its first checkpoint: {process.communicate()}"
            )
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, (
        f"training finished (exit {process.returncode}) before it could be killed; "
        "nothing was resumed"
    )
    return int(torch.load(checkpoint, map_location="cpu", weights_only=False)["step"])


def test_killed_training_resumes_to_the_same_weights(
    volumes: Volumes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"skeleton_training": {"checkpoint_every": CHECKPOINT_EVERY}}))
    interrupted, reference = tmp_path / "interrupted", tmp_path / "reference"

    step = _kill_after_first_checkpoint(
        _train_args(volumes.aniso, interrupted, config), interrupted / "checkpoints" / "skeleton.pt"
    )
    assert 0 < step < ITERATIONS
    assert not (interrupted / "skeleton.safetensors").exists()
    assert json.loads((interrupted / "skelem-model.json").read_text())["stages"] == []

    with caplog.at_level(logging.INFO, logger="skelem.training.loop"):
        out = assert_success(skelem(*_train_args(volumes.aniso, interrupted, config)))
    assert "stages skeleton" in out
    assert f"resuming at step {step}" in caplog.text  # continued, did not start again from 0
    assert_success(skelem(*_train_args(volumes.aniso, reference, config)))

    resumed = load_file(interrupted / "skeleton.safetensors")
    uninterrupted = load_file(reference / "skeleton.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    differing = [name for name in resumed if not torch.equal(resumed[name], uninterrupted[name])]
    assert not differing, (
        f"resumed from step {step}, {len(differing)} tensors differ, e.g. {differing[0]}"
    )
