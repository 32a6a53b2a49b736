"""Every restored output says how it was made, and the record is read back from the file itself.

The fields (``skelem.inference.provenance``): the SkelEM version, the method, factor and seed, the
restore options, the model's full config with the SHA-256 of its canonical JSON, the SHA-256 of
each weights file, and the command line (``sys.argv`` from ``skelem``, ``None`` from Python).
Expected hashes are computed here from the files and the JSON, not by the code under test.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import skelem
from skelem.cli.common import command_line
from skelem.cli.main import cli
from skelem.config.hashing import config_sha256
from skelem.config.models import build_config
from skelem.config.restore import RestoreOptions
from skelem.inference.provenance import RUN_KEY_FIELDS, run_key_part
from skelem.inference.restore import restore_to_file
from skelem.io import open_volume, write_volume
from skelem.models.artifact import MANIFEST, load_artifact

from .conftest import FACTOR, SHAPE, VOXEL, make_model

OUTPUTS = ("r.tif", "r.ome.zarr", "r.h5")  # the formats that carry metadata (NPY holds none)


def _sha256_bytes(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 9 x 32 x 32 acquisition (factor 4 from its voxel size) and an untrained tiny model."""
    root = tmp_path_factory.mktemp("provenance")
    rng = np.random.default_rng(1)
    write_volume(root / "v.tif", (rng.random(SHAPE) * 255).astype(np.uint8), VOXEL)
    return root / "v.tif", make_model(root / "model")


def _check_record(
    metadata: dict | None, model: Path, options: RestoreOptions, command: list[str] | None
) -> None:
    assert metadata is not None, "the output carries no SkelEM metadata"
    manifest = json.loads((model / MANIFEST).read_text())
    config = manifest["config"]
    assert metadata["skelem_version"] == skelem.__version__
    assert metadata["method"] == "skeleton"
    assert metadata["factor"] == FACTOR
    assert metadata["seed"] == options.seed
    assert metadata["options"] == options.model_dump(mode="json")
    assert metadata["config"] == config
    expected_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    assert metadata["config_sha256"] == expected_hash
    weights = {p.name: _sha256_bytes(p) for p in model.glob("*.safetensors")}
    assert weights and metadata["weights_sha256"] == weights
    assert metadata["model"] == str(model)
    assert metadata["command_line"] == command


@pytest.mark.parametrize("name", OUTPUTS)
def test_python_api_output_records_its_provenance(
    setup: tuple[Path, Path], tmp_path: Path, name: str
) -> None:
    volume_path, model = setup
    options = RestoreOptions(method="skeleton", seed=11, device="cpu")
    summary = restore_to_file(
        open_volume(volume_path), tmp_path / name, load_artifact(model), options=options
    )
    assert summary["complete"]
    uri = str(tmp_path / name) + (":/data" if name.endswith(".h5") else "")
    _check_record(open_volume(uri).metadata, model, options, command=None)


@pytest.mark.parametrize("name", ("r.tif", "r.ome.zarr"))
def test_cli_output_records_the_command_line(
    setup: tuple[Path, Path], tmp_path: Path, name: str
) -> None:
    volume_path, model = setup
    args = ["restore", str(volume_path), "--model", str(model), "-o", str(tmp_path / name)]
    args += ["--method", "skeleton", "--seed", "5", "--device", "cpu", "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    options = RestoreOptions(method="skeleton", seed=5, device="cpu")
    _check_record(open_volume(tmp_path / name).metadata, model, options, command=sys.argv)


def test_interpolation_records_no_model(setup: tuple[Path, Path], tmp_path: Path) -> None:
    volume_path, _ = setup
    options = RestoreOptions(method="cubic")
    restore_to_file(open_volume(volume_path), tmp_path / "c.tif", options=options)
    metadata = open_volume(tmp_path / "c.tif").metadata
    assert metadata is not None
    assert (metadata["method"], metadata["factor"], metadata["seed"]) == ("cubic", FACTOR, 0)
    assert metadata["skelem_version"] == skelem.__version__
    for key in ("model", "config", "config_sha256", "weights_sha256", "command_line"):
        assert metadata[key] is None, key


def test_config_hash_follows_the_config_not_its_key_order() -> None:
    base = build_config({"degradation": {"factor": 4}, "skeleton": {"channels": 4, "depth": 2}})
    same = build_config({"skeleton": {"depth": 2, "channels": 4}, "degradation": {"factor": 4}})
    other_factor = build_config({"degradation": {"factor": 8}, "skeleton": {"channels": 4}})
    other_width = build_config({"degradation": {"factor": 4}, "skeleton": {"channels": 8}})
    digest = config_sha256(base)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert config_sha256(same) == digest
    assert config_sha256(base.model_dump(mode="json")) == digest  # the dump hashes the same
    assert config_sha256(other_factor) != digest
    assert config_sha256(other_width) != digest


def test_outputs_of_models_with_other_configs_record_other_hashes(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    volume_path, _ = setup
    volume = open_volume(volume_path)
    options = RestoreOptions(method="skeleton", device="cpu")
    hashes = []
    for name, patch in (("a", None), ("b", 32)):
        model = make_model(tmp_path / f"model_{name}", patch_size=patch)
        restore_to_file(volume, tmp_path / f"{name}.tif", load_artifact(model), options=options)
        hashes.append(open_volume(tmp_path / f"{name}.tif").metadata["config_sha256"])
    assert hashes[0] != hashes[1]


def test_the_recorded_command_line_is_the_process_arguments() -> None:
    assert command_line() == sys.argv and command_line() is not sys.argv


def test_the_run_key_ignores_the_command_line_and_version() -> None:
    """A streamed output resumed by another command line (e.g. another ``--workers``) or a
    newer SkelEM keeps its finished blocks; another model or seed does not."""
    record = {key: key for key in RUN_KEY_FIELDS}
    record.update(command_line=["skelem", "a"], skelem_version="0.1.0", options={"device": "cpu"})
    other = {**record, "command_line": ["skelem", "b"], "skelem_version": "9.9"}
    assert run_key_part(record) == run_key_part(other)
    assert run_key_part(record) != run_key_part({**record, "weights_sha256": {"x": "0"}})
