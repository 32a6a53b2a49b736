"""Weights files are checked against the SHA-256 their manifest records, refused if they differ.

A damaged or modified ``.safetensors`` file of the right shapes would otherwise load and restore
garbage without a word. Manifests written before hashes were recorded still load.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from skelem.config.models import build_config
from skelem.data.normalize import PercentileNormalizer
from skelem.errors import ModelError
from skelem.models.artifact import MANIFEST, WEIGHT_FILES, ModelArtifact, load_artifact
from skelem.models.factory import build_refiner, build_skeleton, save_weights

TINY = {"channels": 4, "depth": 2}


def _model(directory: Path, stages: tuple[str, ...] = ("skeleton", "refiner")) -> ModelArtifact:
    """A model folder with untrained tiny networks (no training: only the files matter here)."""
    config = build_config(
        {"skeleton": TINY, "refiner": TINY, "diffusion_peer": TINY, "device": "cpu"}
    )
    torch.manual_seed(0)
    save_weights(build_skeleton(config.skeleton), directory / WEIGHT_FILES["skeleton"])
    save_weights(build_refiner(config.refiner), directory / WEIGHT_FILES["refiner"])
    artifact = ModelArtifact(directory, config, PercentileNormalizer(0.0, 255.0), list(stages))
    artifact.save_manifest()
    return artifact


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flip_last_byte(path: Path) -> None:
    """Change one byte of the last tensor's data: same size, same shapes, other values."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def _refusal(path: Path) -> str:
    return (
        f"Model weights file {path} does not match the sha256 recorded in its manifest: the "
        "file is damaged or was modified."
    )


def test_the_manifest_records_each_weights_file_sha256(tmp_path: Path) -> None:
    _model(tmp_path)
    recorded = json.loads((tmp_path / MANIFEST).read_text())["weights_sha256"]
    assert recorded == {
        name: _sha256(tmp_path / name) for name in ("skeleton.safetensors", "refiner.safetensors")
    }
    assert load_artifact(tmp_path).weights_sha256 == recorded


def test_intact_weights_load(tmp_path: Path) -> None:
    artifact = load_artifact(_model(tmp_path).directory)
    assert artifact.load_network("skeleton") is not None
    assert artifact.load_network("refiner") is not None


def test_a_weights_file_with_one_byte_flipped_is_refused(tmp_path: Path) -> None:
    _model(tmp_path)
    weights = tmp_path / "skeleton.safetensors"
    _flip_last_byte(weights)
    artifact = load_artifact(tmp_path)
    with pytest.raises(ModelError) as info:
        artifact.load_network("skeleton")
    assert str(info.value) == _refusal(weights)
    assert artifact.load_network("refiner") is not None  # the other file is intact


def test_a_truncated_weights_file_is_refused(tmp_path: Path) -> None:
    _model(tmp_path)
    weights = tmp_path / "refiner.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelError) as info:
        load_artifact(tmp_path).load_network("refiner")
    assert str(info.value) == _refusal(weights)


def test_a_manifest_without_hashes_still_loads(tmp_path: Path) -> None:
    """Models saved before the hashes were recorded: nothing to compare, so they load."""
    _model(tmp_path)
    manifest = tmp_path / MANIFEST
    payload = json.loads(manifest.read_text())
    del payload["weights_sha256"]
    manifest.write_text(json.dumps(payload))
    artifact = load_artifact(tmp_path)
    assert artifact.weights_sha256 == {}
    assert artifact.load_network("skeleton") is not None


def test_a_malformed_hash_table_is_a_corrupt_manifest(tmp_path: Path) -> None:
    _model(tmp_path)
    manifest = tmp_path / MANIFEST
    payload = json.loads(manifest.read_text())
    payload["weights_sha256"] = ["not", "a", "table"]
    manifest.write_text(json.dumps(payload))
    with pytest.raises(ModelError, match="incomplete or corrupt"):
        load_artifact(tmp_path)


def test_an_alignment_stopped_before_its_manifest_falls_back_to_the_recorded_refiner(
    tmp_path: Path,
) -> None:
    """The alignment stage copies the refiner aside, then overwrites it; a run killed before the
    manifest is saved leaves the recorded refiner in the copy, which is what gets loaded."""
    _model(tmp_path)
    recorded = tmp_path / "refiner.safetensors"
    copy = tmp_path / "refiner_unaligned.safetensors"
    shutil.copyfile(recorded, copy)
    torch.manual_seed(1)
    artifact = load_artifact(tmp_path)
    save_weights(build_refiner(artifact.config.refiner), recorded)  # the aligned refiner
    assert artifact.checked_weights_path("refiner") == copy
    loaded = artifact.load_network("refiner").state_dict()
    for name, tensor in load_file(str(copy)).items():
        assert torch.equal(loaded[name], tensor)
    # once alignment is recorded as done, a changed refiner is damage, not an interrupted stage
    artifact.stages.append("alignment")
    with pytest.raises(ModelError, match="does not match the sha256"):
        artifact.checked_weights_path("refiner")
