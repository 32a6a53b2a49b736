"""Pretrained models: restore without --model, fine-tune with --init, and the shipped models."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from skelem.io import open_volume
from skelem.models.pretrained import PRETRAINED_DIR, PRETRAINED_ENV

from .cli_helpers import assert_success, assert_user_error, single_thread, skelem
from .conftest import FACTOR, Volumes

TINY = ("-q", "--iterations", 2, "--patch-size", 16, "--seed", 0)


@pytest.fixture(scope="module")
def fake_pretrained(volumes: Volumes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 'pretrained' models holding a tiny x4 model as ``fibsem_x4``."""
    root = tmp_path_factory.mktemp("pretrained")
    with single_thread():
        assert_success(
            skelem(
                "train",
                volumes.aniso,
                "-o",
                root / f"fibsem_x{FACTOR}",
                "--stages",
                "skeleton,refiner",
                *TINY,
            )
        )
    shutil.rmtree(root / f"fibsem_x{FACTOR}" / "checkpoints")
    return root


@pytest.fixture
def use_pretrained(fake_pretrained: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(PRETRAINED_ENV, str(fake_pretrained))
    return fake_pretrained / f"fibsem_x{FACTOR}"


def test_restore_without_model_uses_the_pretrained_model_and_says_so(
    use_pretrained: Path, volumes: Volumes, tmp_path: Path
) -> None:
    auto, explicit = tmp_path / "auto.tif", tmp_path / "explicit.tif"
    result = skelem("restore", volumes.aniso, "-o", auto)
    assert_success(result)
    assert "pretrained FIB-SEM x4 model" in result.stderr and "input's percentiles" in result.stderr
    assert "electron microscopy only" in " ".join(result.stderr.split())
    assert "(skelem, factor 4)" in result.stdout
    assert_success(
        skelem(
            "restore",
            volumes.aniso,
            "-o",
            explicit,
            "--model",
            use_pretrained,
            "--normalize",
            "input",
            "-q",
        )
    )
    a, b = np.asarray(open_volume(auto).read()), np.asarray(open_volume(explicit).read())
    np.testing.assert_array_equal(a, b)
    acquired = np.asarray(open_volume(volumes.aniso).read())
    np.testing.assert_array_equal(a[::FACTOR], acquired)


def test_without_a_pretrained_model_for_the_factor(
    use_pretrained: Path, volumes: Volumes, tmp_path: Path
) -> None:
    """No model of that factor: cubic when no method is asked for; a learned method is refused."""
    result = skelem("restore", volumes.aniso, "-o", tmp_path / "c.tif", "--factor", 3)
    assert_success(result)
    assert "no pretrained model for factor 3: cubic" in result.stderr
    refused = skelem(
        "restore", volumes.aniso, "-o", tmp_path / "s.tif", "--factor", 3, "--method", "skeleton"
    )
    assert_user_error(refused, "no pretrained model for factor 3", "shipped: x4")
    assert not (tmp_path / "s.tif").exists()


def test_fine_tuning_starts_from_the_given_model(
    use_pretrained: Path, volumes: Volumes, tmp_path: Path
) -> None:
    """--init pretrained: the skeleton starts from the pretrained one (one step away from it),
    while a model trained from scratch with the same seed is far from it."""
    from safetensors.numpy import load_file

    def skeleton(directory: Path) -> np.ndarray:
        weights = load_file(directory / "skeleton.safetensors")
        return np.concatenate([v.ravel() for _, v in sorted(weights.items())])

    args = ("--stages", "skeleton", "-q", "--iterations", 1, "--patch-size", 16, "--seed", 1)
    with single_thread():
        tuned = skelem(
            "train", volumes.aniso, "-o", tmp_path / "tuned", "--init", "pretrained", *args
        )
        assert_success(tuned)
        assert_success(skelem("train", volumes.aniso, "-o", tmp_path / "scratch", *args))
    assert "fine-tuning the pretrained FIB-SEM x4 model" in tuned.stderr
    start = skeleton(use_pretrained)
    near = np.abs(skeleton(tmp_path / "tuned") - start).max()
    far = np.abs(skeleton(tmp_path / "scratch") - start).max()
    assert near < 0.05 * far


def test_init_from_a_model_of_another_factor_is_refused(
    use_pretrained: Path, volumes: Volumes, tmp_path: Path
) -> None:
    result = skelem(
        "train", volumes.aniso, "-o", tmp_path / "m", "--factor", 2, "--init", use_pretrained, *TINY
    )
    assert_user_error(result, "trained for factor 4")


SHIPPED = sorted(PRETRAINED_DIR.glob("fibsem_x*/skelem-model.json"))


@pytest.mark.skipif(not SHIPPED, reason="no pretrained models in this checkout")
@pytest.mark.parametrize("manifest", SHIPPED, ids=lambda p: p.parent.name)
def test_shipped_pretrained_models_match_their_hashes_and_beat_cubic(
    manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each shipped model loads (its weights match the sha256 in its manifest and in its
    PROVENANCE.md) and restores an EM phantom it never saw, zero-shot, better than cubic."""
    from skelem.data.phantoms import em_phantom
    from skelem.evaluation.benchmark import simulate_acquisition
    from skelem.inference.restore import RestoreOptions, restore_volume
    from skelem.io import Volume
    from skelem.metrics.fidelity import psnr
    from skelem.models.artifact import file_sha256, load_artifact

    monkeypatch.delenv(PRETRAINED_ENV)
    folder = manifest.parent
    factor = json.loads(manifest.read_text())["config"]["degradation"]["factor"]
    provenance = (folder / "PROVENANCE.md").read_text()
    for weights in folder.glob("*.safetensors"):
        assert file_sha256(weights) in provenance, weights.name
    artifact = load_artifact(folder)
    truth, _ = em_phantom((4 * factor + 1, 64, 64), seed=11)
    iso = (truth * 255).astype(np.uint8)
    acquired, gt = simulate_acquisition(iso, factor)
    vol = Volume(acquired, (0.01 * factor, 0.01, 0.01), "micrometer", "phantom")
    with single_thread():
        for method in ("skeleton", "skelem"):
            options = RestoreOptions(method=method, normalize="input", detail=0.0)
            out = restore_volume(vol, artifact, factor, options, input_units=True)
            cubic = restore_volume(
                vol, None, factor, RestoreOptions(method="cubic"), input_units=True
            )
            assert psnr(out, gt, data_range=255) > psnr(cubic, gt, data_range=255) + 0.3
    assert os.environ.get(PRETRAINED_ENV) is None


@pytest.mark.skipif(not SHIPPED, reason="no pretrained models in this checkout")
def test_the_shipped_x8_model_samples_its_own_detail_settings_unless_told() -> None:
    """The x8 model's manifest carries its sampling defaults (detail 0.85, 2 slow modes
    removed, chosen on t2's tuning half); a restore uses them, and the flags override them."""
    from skelem.inference.methods import build_method
    from skelem.inference.restore import RestoreOptions
    from skelem.models.artifact import load_artifact

    artifact = load_artifact(PRETRAINED_DIR / "fibsem_x8")
    assert (artifact.config.diffusion.detail, artifact.config.diffusion.slow_modes) == (0.85, 2)
    default = build_method(artifact, 8, RestoreOptions(method="skelem", device="cpu"))
    assert (default.engine.detail, default.engine.slow_modes) == (0.85, 2)
    assert default.describe()["slow_modes"] == 2
    told = build_method(
        artifact, 8, RestoreOptions(method="skelem", device="cpu", detail=0.7, slow_modes=0)
    )
    assert (told.engine.detail, told.engine.slow_modes) == (0.7, 0)
    assert "slow_modes" not in told.describe()


@pytest.fixture(scope="module")
def lm_acquisition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An LM-like phantom (nuclei and puncta, 12-bit) acquired at x4: unlike FIB-SEM."""
    import tifffile

    from skelem.data.phantoms import lm_phantom

    image, _ = lm_phantom((49, 64, 64), seed=7, psf_sigma=(1.0, 1.0, 1.0))
    iso = np.clip(np.round(image * 4095), 0, 4095).astype(np.uint16)
    path = tmp_path_factory.mktemp("lm") / "lm_x4.tif"
    tifffile.imwrite(
        path,
        iso[::FACTOR],
        imagej=True,
        resolution=(10.0, 10.0),
        metadata={"spacing": 0.4, "unit": "um", "axes": "ZYX"},
    )
    return path


@pytest.fixture
def shipped_pretrained(monkeypatch: pytest.MonkeyPatch) -> None:
    """The models shipped in the package (tests see none by default)."""
    monkeypatch.setenv(PRETRAINED_ENV, str(PRETRAINED_DIR))


@pytest.mark.usefixtures("shipped_pretrained")
def test_without_model_a_volume_unlike_fibsem_is_restored_without_sampled_detail(
    lm_acquisition: Path, tmp_path: Path
) -> None:
    """The shipped x4 model's detail check fails on LM-like data: the restore says so and
    writes the deterministic output, the same as asking for --detail 0."""
    checked, explicit = tmp_path / "checked.tif", tmp_path / "detail0.tif"
    result = skelem("restore", lm_acquisition, "-o", checked)
    assert_success(result)
    said = " ".join(result.stderr.split())
    assert "detail check failed" in said and "restoring at --detail 0" in said
    assert_success(skelem("restore", lm_acquisition, "-o", explicit, "--detail", 0, "-q"))
    a, b = np.asarray(open_volume(checked).read()), np.asarray(open_volume(explicit).read())
    np.testing.assert_array_equal(a, b)
    quiet = skelem("restore", lm_acquisition, "-o", tmp_path / "q.tif", "-q", "--samples", 2)
    assert "detail check failed" in quiet.stderr  # a changed default is said even with -q
    assert "the std output is 0" in " ".join(quiet.stderr.split())
    std_volume = open_volume(tmp_path / "q_std.tif")
    assert np.abs(np.asarray(std_volume.read())).max() == 0
    for written in (open_volume(checked), std_volume):  # the outputs say why detail is 0
        assert written.metadata["detail_check"]["passed"] is False
        assert written.metadata["options"]["detail"] == 0.0
    default = tmp_path / "default.tif"
    asked = skelem("restore", lm_acquisition, "-o", default, "--detail", 0.7)
    assert_success(asked)
    assert "detail check passed" not in asked.stderr  # an explicit detail is not second-guessed
    assert "detail check failed" not in asked.stderr
    assert "detail_check" not in open_volume(default).metadata
    assert not np.array_equal(np.asarray(open_volume(default).read()), a)


@pytest.mark.usefixtures("shipped_pretrained")
def test_without_model_fibsem_passes_the_detail_check(tmp_path: Path) -> None:
    import tifffile

    from skelem.sample_data import sample_path

    crop = tifffile.imread(sample_path())[:, :64, :96][::FACTOR]
    path = tmp_path / "em_x4.tif"
    tifffile.imwrite(
        path,
        crop,
        imagej=True,
        resolution=(100.0, 100.0),
        metadata={"spacing": 0.04, "unit": "um", "axes": "ZYX"},
    )
    result = skelem("restore", path, "-o", tmp_path / "out.tif")
    assert_success(result)
    assert "detail check passed" in " ".join(result.stderr.split())


def test_with_a_model_trained_on_fibsem_a_volume_unlike_it_is_restored_without_detail(
    lm_acquisition: Path, tmp_path: Path
) -> None:
    """`restore --model` judges a volume with the model's own reference (recorded on its training
    volume): an LM-like volume gets the deterministic output, said on stderr; the training volume
    passes."""
    import tifffile

    from skelem.inference.detail_check import REFERENCE_KEY, record_reference
    from skelem.io import Volume
    from skelem.models.artifact import load_artifact
    from skelem.sample_data import sample_path

    own = tmp_path / "own"  # the shipped x4 model, standing in for one trained on the EM crop
    shutil.copytree(PRETRAINED_DIR / f"fibsem_x{FACTOR}", own)
    manifest = json.loads((own / "skelem-model.json").read_text())
    del manifest["provenance"][REFERENCE_KEY]
    (own / "skelem-model.json").write_text(json.dumps(manifest))
    crop = tifffile.imread(sample_path())[:, :64, :96][::FACTOR]
    em = tmp_path / "em_x4.tif"
    tifffile.imwrite(
        em, crop, imagej=True, resolution=(100.0, 100.0), metadata={"spacing": 0.04, "unit": "um"}
    )
    record_reference(load_artifact(own), Volume(crop, (4.0, 1.0, 1.0), "micrometer", str(em)))
    checked, explicit = tmp_path / "checked.tif", tmp_path / "detail0.tif"
    result = skelem("restore", lm_acquisition, "--model", own, "-o", checked, "-q")
    assert_success(result)
    said = " ".join(result.stderr.split())
    assert "detail check failed" in said and "the volume it was trained on" in said
    assert_success(
        skelem("restore", lm_acquisition, "--model", own, "-o", explicit, "--detail", 0, "-q")
    )
    a, b = np.asarray(open_volume(checked).read()), np.asarray(open_volume(explicit).read())
    np.testing.assert_array_equal(a, b)
    same = skelem("restore", em, "--model", own, "-o", tmp_path / "em_out.tif")
    assert_success(same)
    said = " ".join(same.stderr.split())
    assert "detail check passed: this is the volume the model was trained on" in said
