"""The same ``skelem restore`` command and seed write the same pixels, bit for bit, on CPU.

The model holds an untrained tiny skeleton and refiner (only determinism matters here, and they
restore a 9 x 32 x 32 volume in well under a second), so ``--method skelem`` runs the whole
sampler: the truncated reverse diffusion with its coordinate-keyed noise. Another ``--seed``
draws other detail between the measured slices and leaves the measured slices as acquired.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from skelem.cli.main import cli
from skelem.config.models import build_config
from skelem.data.normalize import PercentileNormalizer
from skelem.io import open_volume, write_volume
from skelem.models.artifact import WEIGHT_FILES, ModelArtifact
from skelem.models.factory import build_refiner, build_skeleton, save_weights

from .conftest import FACTOR, SHAPE, TINY, VOXEL


def _skelem_model(directory: Path) -> Path:
    """A model folder with an untrained tiny skeleton and refiner (method ``skelem`` by default)."""
    config = build_config(
        {"degradation": {"factor": FACTOR}, "skeleton": TINY, "refiner": TINY, "device": "cpu"}
    )
    directory.mkdir()
    torch.manual_seed(0)
    save_weights(build_skeleton(config.skeleton), directory / WEIGHT_FILES["skeleton"])
    save_weights(build_refiner(config.refiner), directory / WEIGHT_FILES["refiner"])
    normalizer = PercentileNormalizer(0.0, 255.0)
    artifact = ModelArtifact(directory, config, normalizer, ["skeleton", "refiner"])
    artifact.save_manifest()
    return directory


@pytest.fixture(scope="module")
def acquisition(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 9 x 32 x 32 uint8 acquisition (factor 4 from its voxel size) and the model folder."""
    root = tmp_path_factory.mktemp("reproducibility")
    rng = np.random.default_rng(7)
    write_volume(root / "v.tif", (rng.random(SHAPE) * 255).astype(np.uint8), VOXEL)
    return root / "v.tif", _skelem_model(root / "model")


def _restore(volume: Path, model: Path, output: Path, seed: int) -> np.ndarray:
    """Run ``skelem restore --method skelem --seed SEED`` in this process; the written pixels."""
    args = ["restore", str(volume), "--model", str(model), "-o", str(output), "-q"]
    args += ["--method", "skelem", "--seed", str(seed), "--device", "cpu", "--dtype", "float32"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, f"{result.stderr}\n{result.exception!r}"
    restored = open_volume(output)
    assert restored.metadata is not None
    assert (restored.metadata["method"], restored.metadata["seed"]) == ("skelem", seed)
    assert restored.metadata["restore"]["detail"] > 0  # the refiner's sampling ran
    return np.asarray(restored.read())


@pytest.mark.parametrize("suffix", (".tif", ".ome.zarr"))
def test_same_command_and_seed_give_byte_identical_pixels(
    acquisition: tuple[Path, Path], tmp_path: Path, suffix: str
) -> None:
    volume, model = acquisition
    first = _restore(volume, model, tmp_path / f"first{suffix}", seed=3)
    second = _restore(volume, model, tmp_path / f"second{suffix}", seed=3)
    assert first.shape == (FACTOR * (SHAPE[0] - 1) + 1, *SHAPE[1:])
    assert first.dtype == second.dtype == np.float32
    assert first.tobytes() == second.tobytes()


def test_another_seed_changes_only_the_pixels_between_measured_slices(
    acquisition: tuple[Path, Path], tmp_path: Path
) -> None:
    volume, model = acquisition
    seed3 = _restore(volume, model, tmp_path / "seed3.tif", seed=3)
    seed4 = _restore(volume, model, tmp_path / "seed4.tif", seed=4)
    measured = np.asarray(open_volume(volume).read(), dtype=np.float32)
    np.testing.assert_allclose(seed3[::FACTOR], measured, atol=1e-3)  # data consistency
    np.testing.assert_allclose(seed4[::FACTOR], measured, atol=1e-3)
    between = np.ones(seed3.shape[0], bool)
    between[::FACTOR] = False
    differing = np.mean(seed3[between] != seed4[between])
    assert differing > 0.5, f"only {differing:.1%} of the voxels between measured slices differ"
