"""``skelem export --format bioimageio``: a spec-0.5 package of the skeleton that passes
bioimage.io's own test (bioimageio.core) and restores like ``skelem restore --method skeleton``."""

from __future__ import annotations

import hashlib
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from ruyaml import YAML

from skelem.cli.main import cli
from skelem.config.restore import RestoreOptions
from skelem.data.degradation import degrade
from skelem.data.phantoms import em_phantom
from skelem.inference.restore import restore_volume
from skelem.io import open_volume, write_volume
from skelem.models.artifact import load_artifact
from skelem.training.pipeline import train_model

from .helpers import FACTOR, tiny_config


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A skeleton trained on a uint8 phantom TIFF of 20 slices, and its bioimage.io packages."""
    folder = tmp_path_factory.mktemp("bioimageio")
    truth, _ = em_phantom((80, 56, 56), seed=0)
    as_uint8 = np.clip(np.rint(degrade(truth, FACTOR, axis=0) * 255), 0, 255).astype(np.uint8)
    acquired = write_volume(folder / "acquired.tif", as_uint8, (16.0, 4.0, 4.0), "nanometer")
    config = tiny_config(
        skeleton_training={"iterations": 10}, refiner_training={"iterations": 2}
    )  # the refiner only lets restore --method skelem --detail 0 run (it is not used there)
    train_model(open_volume(acquired), folder / "model", config, stages=["skeleton", "refiner"])
    packages = {}
    for method in ("skeleton", "skelem-detail0"):
        package = folder / f"{method}.zip"
        result = CliRunner().invoke(
            cli,
            ["export", str(folder / "model"), "-o", str(package), "--format", "bioimageio",
             "--author", "Test Author", "--method", method],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        with zipfile.ZipFile(package) as archive:
            rdf = YAML(typ="safe").load(archive.read("rdf.yaml").decode())
            files = {name: archive.read(name) for name in archive.namelist()}
        packages[method] = (package, rdf, files)
    return folder, packages


def _npy(data: bytes) -> np.ndarray:
    import io

    return np.load(io.BytesIO(data))


def test_package_passes_bioimageio_test(exported):
    """bioimage.io's own check (the skeleton package differs only by one architecture keyword,
    and benchmarks/run_integrations.py tests it on the pretrained model)."""
    from bioimageio.core import test_model

    _, packages = exported
    summary = test_model(packages["skelem-detail0"][0])
    assert summary.status == "passed", summary.format()


def test_description_has_the_factor_halo_weights_hash_and_test_tensors(exported):
    folder, packages = exported
    _, rdf, files = packages["skeleton"]
    assert rdf["format_version"].startswith("0.5")
    (raw,) = rdf["inputs"]
    (restored,) = rdf["outputs"]
    z_in = next(a for a in raw["axes"] if a.get("id") == "z")
    z_out = next(a for a in restored["axes"] if a.get("id") == "z")
    assert z_in["scale"] == FACTOR and z_out.get("scale", 1.0) == 1.0
    assert z_out["size"] == {"tensor_id": "raw", "axis_id": "z", "offset": 1 - FACTOR}
    assert z_out["halo"] % FACTOR == 0 and z_out["halo"] > 2 * FACTOR
    weights = rdf["weights"]["pytorch_state_dict"]
    assert weights["architecture"]["import_from"] == "skelem.export.network"
    assert weights["sha256"] == hashlib.sha256(files[weights["source"]]).hexdigest()
    assert rdf["license"] == "BSD-3-Clause" and rdf["cite"] and rdf["authors"][0]["name"]
    # the test input is a crop of the training volume itself
    test_input = _npy(files[raw["test_tensor"]["source"]])[0, 0]
    training = open_volume(folder / "acquired.tif").read()
    z, y, x = test_input.shape
    z0, y0, x0 = (training.shape[0] - z) // 2, (training.shape[1] - y) // 2, (56 - x) // 2
    np.testing.assert_array_equal(test_input, training[z0 : z0 + z, y0 : y0 + y, x0 : x0 + x])
    test_output = _npy(files[restored["test_tensor"]["source"]])[0, 0]
    assert test_output.shape == (FACTOR * (z - 1) + 1, y, x)


@pytest.mark.parametrize(
    ("method", "options"),
    [("skeleton", {"method": "skeleton"}), ("skelem-detail0", {"method": "skelem", "detail": 0})],
)
def test_exported_network_restores_like_skelem_away_from_the_halo(exported, method, options):
    """The package's test output equals skelem's own restoration of the same crop, inside the
    halo the description declares."""
    folder, packages = exported
    _, rdf, files = packages[method]
    (raw,), (restored,) = rdf["inputs"], rdf["outputs"]
    test_input = _npy(files[raw["test_tensor"]["source"]])[0, 0]
    test_output = _npy(files[restored["test_tensor"]["source"]])[0, 0]
    halo = {a["id"]: a["halo"] for a in restored["axes"] if "halo" in a}
    reference = restore_volume(
        open_volume(folder / "acquired.tif").with_data(test_input),
        load_artifact(folder / "model"),
        options=RestoreOptions(**options),
        input_units=True,
    )
    inner = tuple(slice(halo[a], -halo[a]) for a in "zyx")
    np.testing.assert_allclose(test_output[inner], reference[inner], rtol=1e-4, atol=1e-3)
    if method == "skelem-detail0":  # the acquired slices come back exactly
        np.testing.assert_allclose(test_output[::FACTOR], test_input, rtol=1e-5, atol=1e-4)


def test_export_refuses_a_folder_that_is_not_a_model_in_one_sentence(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(
        cli, ["export", str(tmp_path / "empty"), "-o", str(tmp_path / "m.zip")]
    )
    assert result.exit_code == 2
    assert "not a SkelEM model directory" in result.output
    assert "Traceback" not in result.output
