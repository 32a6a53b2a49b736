"""The pretrained models' detail check on a volume's own lateral slices."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from skelem.config.restore import RestoreOptions
from skelem.data.normalize import PercentileNormalizer
from skelem.data.phantoms import lm_phantom
from skelem.inference.detail_check import (
    REFERENCE_KEY,
    TOLERANCE,
    DetailCheck,
    check_detail,
    check_model_detail,
    check_pretrained_detail,
    lateral_detail,
    lateral_windows,
    record_reference,
    windows_fingerprint,
)
from skelem.io import Volume
from skelem.models.artifact import load_artifact
from skelem.models.pretrained import PRETRAINED_DIR, PRETRAINED_ENV
from skelem.sample_data import sample_path

FACTOR = 4


def _acquired(iso: np.ndarray) -> Volume:
    return Volume(iso[::FACTOR], (float(FACTOR), 1.0, 1.0), "micrometer", "test")


@pytest.fixture(scope="module")
def model():
    return load_artifact(PRETRAINED_DIR / f"fibsem_x{FACTOR}")


@pytest.fixture(scope="module")
def lm_volume() -> Volume:
    image, _ = lm_phantom((49, 64, 64), seed=5, psf_sigma=(1.0, 1.0, 1.0))
    return _acquired(np.clip(np.round(image * 4095), 0, 4095).astype(np.uint16))


@pytest.fixture(scope="module")
def em_volume() -> Volume:
    """The embedded FIB-SEM crop (t2, never in the pretrained models' training data)."""
    return _acquired(tifffile.imread(sample_path())[:, :64, :96])


@pytest.fixture
def own_model(model, em_volume: Volume, tmp_path: Path):
    """The pretrained x4 model standing in for one trained on ``em_volume``: its FIB-SEM
    reference removed, its own recorded there."""
    copy = tmp_path / "own"
    shutil.copytree(model.directory, copy)
    manifest = json.loads((copy / "skelem-model.json").read_text())
    del manifest["provenance"][REFERENCE_KEY]
    (copy / "skelem-model.json").write_text(json.dumps(manifest))
    artifact = load_artifact(copy)
    assert record_reference(artifact, em_volume) is not None
    return load_artifact(copy)


def _no_networks(*args, **kwargs):
    raise AssertionError("the detail was measured again")


def _check(volume: Volume, model, **options) -> DetailCheck | None:
    return check_detail(volume, model, RestoreOptions(normalize="input", **options))


def test_windows_are_lateral_slices_whose_rows_end_on_kept_rows() -> None:
    data = np.arange(5 * 40 * 30, dtype=np.float32).reshape(5, 40, 30)
    windows = lateral_windows(data, FACTOR, slices=3, size=128)
    assert len(windows) == 6  # slices 0, 2, 4; rows along Y and along X
    along_y, along_x = windows[0], windows[1]
    assert along_y.shape == (37, 30) and (along_y.shape[0] - 1) % FACTOR == 0
    np.testing.assert_array_equal(along_y, data[0, 1:38, :])
    assert along_x.shape == (29, 40)  # 29 = 4 * 7 + 1 of the 30 columns as rows, all 40 rows
    np.testing.assert_array_equal(along_x, data[0, :, 0:29].T)
    np.testing.assert_array_equal(windows[2], data[2, 1:38, :])
    assert lateral_windows(np.zeros((4, 8, 8)), FACTOR) == []  # too small for two intervals
    square = np.arange(2 * 21 * 21, dtype=np.float32).reshape(2, 21, 21)
    along_y, along_x = lateral_windows(square, FACTOR, slices=1)
    np.testing.assert_array_equal(along_y, square[0])
    np.testing.assert_array_equal(along_x, square[0].T)  # a square slice: both orientations


def test_no_detail_draws_nothing_and_costs_nothing_and_the_models_detail_does(
    model, em_volume: Volume
) -> None:
    windows = lateral_windows(em_volume.data, FACTOR, slices=2, size=64)
    normalizer = PercentileNormalizer.fit(em_volume.data)
    none = lateral_detail(model, windows, normalizer, RestoreOptions(detail=0.0))
    assert none.energy_ratio == 0.0 and none.cost_db == 0.0
    some = lateral_detail(model, windows, normalizer)
    assert some.energy_ratio > 0.05 and some.cost_db > 0.1


def test_the_shipped_models_record_their_reference(model) -> None:
    for factor in (4, 8):
        path = PRETRAINED_DIR / f"fibsem_x{factor}" / "skelem-model.json"
        reference = json.loads(path.read_text())["provenance"][REFERENCE_KEY]
        assert 0 < reference["energy_ratio"] < 1 and reference["cost_db"] > 0


def test_fibsem_passes_and_a_light_microscopy_phantom_fails(
    model, em_volume: Volume, lm_volume: Volume
) -> None:
    em = _check(em_volume, model)
    assert em is not None and em.passed and em.ratio < 1.15
    lm = _check(lm_volume, model)
    assert lm is not None and not lm.passed and lm.ratio > 1.5 * TOLERANCE
    assert "restoring at --detail 0" in lm.message() and "--detail 0" not in em.message()
    assert lm.as_dict()["passed"] is False and lm.as_dict()["windows"] == lm.windows


def test_the_x8_model_is_judged_by_the_x4_model_and_falls_back_to_detail_zero(
    lm_volume: Volume, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PRETRAINED_ENV, str(PRETRAINED_DIR))  # tests see none by default
    x8 = load_artifact(PRETRAINED_DIR / "fibsem_x8")
    options = RestoreOptions(normalize="input")
    check = check_pretrained_detail(lm_volume, x8, options)
    assert check is not None and not check.passed and options.detail == 0.0
    x4_reference = load_artifact(PRETRAINED_DIR / "fibsem_x4").provenance[REFERENCE_KEY]
    assert check.reference == x4_reference["energy_ratio"]


def test_nothing_is_checked_when_the_user_chose_or_there_is_no_reference(
    model, lm_volume: Volume, tmp_path: Path
) -> None:
    assert _check(lm_volume, model, detail=0.7) is None  # a detail was asked for
    assert _check(lm_volume, model, method="skeleton") is None
    assert _check(lm_volume, model, fuse="steps") is None  # joint sampling keeps its detail
    copy = tmp_path / "model"
    shutil.copytree(model.directory, copy)
    manifest = json.loads((copy / "skelem-model.json").read_text())
    del manifest["provenance"][REFERENCE_KEY]
    (copy / "skelem-model.json").write_text(json.dumps(manifest))
    assert _check(lm_volume, load_artifact(copy)) is None
    broken = lm_volume.data.astype(np.float32)
    broken[:, 30, 30] = np.nan  # in every window: the restore's validation reports it, not this
    assert _check(Volume(broken, (4.0, 1.0, 1.0), "micrometer", "nan"), model) is None


def test_napari_s_pretrained_source_runs_the_check_and_says_so(
    lm_volume: Volume, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skelem.napari._run import RestoreRequest, run_request

    monkeypatch.setenv(PRETRAINED_ENV, str(PRETRAINED_DIR))  # tests see none by default
    result = run_request(RestoreRequest(lm_volume, FACTOR), lambda event: None)
    assert result.metadata["skelem_detail_check"]["passed"] is False
    assert any("restoring at --detail 0" in note for note in result.notes)
    np.testing.assert_allclose(result.restored[::FACTOR], lm_volume.data, atol=1e-3)  # measured


def test_the_benchmark_s_pretrained_skelem_row_falls_back_as_restore_does(
    model, lm_volume: Volume
) -> None:
    from skelem.evaluation.benchmark import _detail_checked
    from skelem.evaluation.methods import MethodSpec

    row = MethodSpec(
        "skelem-pretrained", "pretrained", RestoreOptions(method="skelem"), pretrained=True
    )
    checked, check = _detail_checked(row, lm_volume, model)
    assert check is not None and not check.passed
    assert checked.restore.detail == 0.0 and row.restore.detail is None  # a copy, not the spec


def test_a_trained_model_records_its_reference_on_its_training_volume_once(
    own_model, em_volume: Volume, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skelem.inference.detail_check as dc

    reference = own_model.provenance[REFERENCE_KEY]  # read back from the saved manifest
    windows = lateral_windows(em_volume.data, FACTOR)
    assert reference["fingerprint"] == windows_fingerprint(windows)
    assert reference["windows"] == len(windows) and reference["stages"] == sorted(own_model.stages)
    measured = lateral_detail(
        own_model,
        windows,
        PercentileNormalizer.fit(em_volume.data, percentiles=own_model.config.percentiles),
        RestoreOptions(normalize="input"),
    )
    assert reference["energy_ratio"] == pytest.approx(measured.energy_ratio, rel=1e-6)
    assert reference["cost_db"] == pytest.approx(measured.cost_db, rel=1e-6, abs=1e-9)
    calls = []
    real = dc.lateral_detail
    monkeypatch.setattr(dc, "lateral_detail", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert record_reference(own_model, em_volume) == reference  # same stages: kept as it is
    assert calls == []
    own_model.stages.remove("alignment")  # another set of stages: measured again
    again = record_reference(own_model, em_volume)
    assert calls == [1] and again["stages"] == ["refiner", "skeleton"]
    assert load_artifact(own_model.directory).provenance[REFERENCE_KEY] == again  # saved
    own_model.stages.remove("refiner")
    assert record_reference(own_model, em_volume) is None  # no refiner, no detail to check


def test_a_failure_to_record_the_reference_never_fails_a_finished_training(
    own_model, em_volume: Volume, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    import skelem.inference.detail_check as dc

    before = dict(own_model.provenance[REFERENCE_KEY])
    own_model.stages.remove("alignment")
    monkeypatch.setattr(dc, "lateral_detail", _no_networks)
    with caplog.at_level("WARNING", logger=dc.__name__):
        assert record_reference(own_model, em_volume) is None
    assert "could not record the detail check's reference" in caplog.text
    assert load_artifact(own_model.directory).provenance[REFERENCE_KEY] == before  # untouched


def test_a_model_folder_judges_a_volume_against_its_own_training_volume(
    own_model, em_volume: Volume, lm_volume: Volume, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skelem.inference.detail_check as dc

    options = RestoreOptions()
    lm = check_model_detail(lm_volume, own_model, options)
    assert lm is not None and not lm.passed and options.detail == 0.0
    said = lm.message()
    assert "the model's refiner" in said and "the volume it was trained on" in said
    assert "Train a model on this volume" in said and "pretrained" not in said
    monkeypatch.setattr(dc, "lateral_detail", _no_networks)  # the training volume: no networks
    options = RestoreOptions()
    same = check_model_detail(em_volume, own_model, options)
    assert same is not None and same.passed and same.ratio == 1.0 and options.detail is None
    assert same.training_volume and "the volume the model was trained on" in same.message()
    assert not lm.training_volume
    other_crop = Volume(em_volume.data[:, :, 8:], em_volume.voxel_size, "micrometer", "crop")
    with pytest.raises(AssertionError, match="measured again"):  # other windows: measured
        check_model_detail(other_crop, own_model, RestoreOptions())


def test_napari_s_model_folder_source_runs_the_check(own_model, lm_volume: Volume) -> None:
    from skelem.napari._run import RestoreRequest, run_request

    request = RestoreRequest(
        lm_volume, FACTOR, model_source="folder", model_dir=str(own_model.directory)
    )
    result = run_request(request, lambda event: None)
    assert result.metadata["skelem_detail_check"]["passed"] is False
    assert any("the model's refiner" in note for note in result.notes)


def test_napari_s_training_sources_record_the_reference(
    model, em_volume: Volume, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model trained in the widget records its reference like `skelem train` (the training
    itself stands in: the shipped model copied without its reference)."""
    import skelem.training.pipeline as pipeline
    from skelem.napari._run import RestoreRequest, obtain_model

    def trained(volume, model_dir, config, stages, progress):
        shutil.copytree(model.directory, model_dir, dirs_exist_ok=True)
        manifest = json.loads((Path(model_dir) / "skelem-model.json").read_text())
        del manifest["provenance"][REFERENCE_KEY]
        (Path(model_dir) / "skelem-model.json").write_text(json.dumps(manifest))
        return load_artifact(model_dir)

    monkeypatch.setattr(pipeline, "train_model", trained)
    folder = tmp_path / "widget_model"
    request = RestoreRequest(em_volume, FACTOR, model_source="train-quick", model_dir=str(folder))
    artifact = obtain_model(request, lambda event: None)
    reference = load_artifact(folder).provenance[REFERENCE_KEY]
    assert reference == artifact.provenance[REFERENCE_KEY]
    assert reference["fingerprint"] == windows_fingerprint(lateral_windows(em_volume.data, FACTOR))
