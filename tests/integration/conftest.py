"""Session fixtures of the integration tests: an EM phantom and one tiny model trained once.

The session model is trained on the phantom degraded x4 along Z, stage by stage, with snapshots
between stages so that tests can check what each stage did (and did not) change:

1. ``skeleton`` (the iteration budget of the "skeleton beats cubic" test);
2. ``refiner`` and ``alignment`` (the skeleton must come out bit-identical);
3. ``diffusion_peer`` (for the pure-diffusion path).

Torch runs single-threaded in these tests (see :func:`helpers.single_thread`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from skelem.data.degradation import degrade
from skelem.data.phantoms import em_phantom
from skelem.io import Volume
from skelem.models.artifact import ModelArtifact, load_artifact
from skelem.training.pipeline import train_model

from .helpers import (
    FACTOR,
    PHANTOM_SHAPE,
    Phantom,
    TrainedModel,
    sha256,
    single_thread,
    tiny_config,
)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with single_thread():
        yield


@pytest.fixture(scope="session")
def phantom() -> Phantom:
    truth, _ = em_phantom(PHANTOM_SHAPE, seed=0)
    acquired = degrade(truth, FACTOR, axis=0)
    voxel = (4.0 * FACTOR, 4.0, 4.0)
    return Phantom(truth, Volume(acquired, voxel_size=voxel, unit="nanometer", source="phantom"))


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory, phantom: Phantom) -> TrainedModel:
    """skeleton -> snapshot -> refiner + alignment -> snapshot -> diffusion peer (~1 minute)."""
    directory = tmp_path_factory.mktemp("session-model") / "model"
    config = tiny_config()
    used: list[torch.nn.Module] = []
    original_load = ModelArtifact.load_network

    def recording_load(
        self: ModelArtifact, network: str, device: object = "cpu"
    ) -> torch.nn.Module:
        model = original_load(self, network, device)
        if network == "skeleton":
            used.append(model)
        return model

    with single_thread():
        artifact = train_model(phantom.volume, directory, config, stages=["skeleton"])
        skeleton_file = artifact.weights_path("skeleton")
        sha_before = sha256(skeleton_file)
        state_before = {
            k: v.clone() for k, v in artifact.load_network("skeleton").state_dict().items()
        }
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ModelArtifact, "load_network", recording_load)
            train_model(phantom.volume, directory, config, stages=["refiner", "alignment"])
        sha_after = sha256(skeleton_file)
        train_model(phantom.volume, directory, config, stages=["diffusion_peer"])
    return TrainedModel(
        directory=directory,
        artifact=load_artifact(directory),
        phantom=phantom,
        skeleton_sha256_after_skeleton_stage=sha_before,
        skeleton_sha256_after_alignment_stage=sha_after,
        skeleton_state_after_skeleton_stage=state_before,
        skeletons_used_by_later_stages=used,
    )
