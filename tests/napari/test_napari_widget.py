"""The dock widget restores an image layer end to end in a real napari viewer, and cancels."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari", reason="napari is not installed (pip install 'skelem[napari]')")

from skelem.config.models import build_config  # noqa: E402
from skelem.data.phantoms import em_phantom  # noqa: E402
from skelem.io import Volume  # noqa: E402
from skelem.napari import _run  # noqa: E402

VOXEL = (0.04, 0.01, 0.01)
FACTOR = 4


@pytest.fixture(scope="module")
def stack() -> np.ndarray:
    """Every 4th slice of a 32 x 32 x 32 phantom: 8 x 32 x 32, uint8."""
    iso, _ = em_phantom((32, 32, 32), seed=0, cell_size=12.0)
    return (iso[::FACTOR] * 255).astype(np.uint8)


def _dock(viewer, stack):
    viewer.add_image(stack, name="stack", scale=VOXEL, translate=(1.0, 0.0, 0.0))
    _, widget = viewer.window.add_plugin_dock_widget("skelem", "Isotropic restoration")
    assert widget.layer_combo.currentText() == "stack"
    assert widget.voxel_edit.text() == "0.04, 0.01, 0.01"  # read from the layer's scale
    return widget


def _tiny_config(factor: int, profile: str, budget: str, iterations: int = 3):
    train = {"iterations": iterations, "batch_size": 2, "patch_size": 16, "checkpoint_every": 10**6}
    return build_config(
        {
            "degradation": {"factor": factor, **_run.parse_profile(profile)},
            "skeleton_training": train,
            "refiner_training": train,
            "alignment_training": {**train, "iterations": 1},
        }
    )


def test_cubic_restoration_arrives_as_a_layer_with_the_z_scale_divided(viewer, stack, wait_until):
    from skelem.config.restore import RestoreOptions
    from skelem.inference.restore import restore_volume

    widget = _dock(viewer, stack)
    widget.method_combo.setCurrentText("cubic")
    widget.run_button.click()
    assert widget.running
    wait_until(lambda: not widget.running)
    assert [layer.name for layer in viewer.layers] == ["stack", "stack restored (cubic x4)"]
    restored = viewer.layers[-1]
    assert restored.data.shape == (FACTOR * (stack.shape[0] - 1) + 1, 32, 32)
    np.testing.assert_allclose(restored.scale, (0.01, 0.01, 0.01))
    np.testing.assert_allclose(restored.translate, (1.0, 0.0, 0.0))
    expected = restore_volume(
        Volume(stack, VOXEL), None, FACTOR, RestoreOptions(method="cubic"), input_units=True
    )
    np.testing.assert_allclose(restored.data, expected)
    np.testing.assert_allclose(restored.data[::FACTOR], stack, atol=1e-3)  # measured slices kept
    assert widget.progress_bar.format() == "done"


def test_pretrained_skelem_with_samples_adds_an_uncertainty_layer(
    viewer, stack, wait_until, monkeypatch
):
    from skelem.models.pretrained import PRETRAINED_DIR, PRETRAINED_ENV

    monkeypatch.setenv(PRETRAINED_ENV, str(PRETRAINED_DIR))
    widget = _dock(viewer, stack)
    widget.method_combo.setCurrentText("skelem")
    widget.samples_spin.setValue(2)
    widget.run_button.click()
    wait_until(lambda: not widget.running, timeout=240)
    assert [layer.name for layer in viewer.layers[1:]] == [
        "stack restored (skelem x4)",
        "stack std (2 samples)",
    ], widget.status.text()
    mean, std = viewer.layers[1], viewer.layers[2]
    assert mean.data.shape == std.data.shape == (29, 32, 32)
    np.testing.assert_allclose(std.scale, (0.01, 0.01, 0.01))
    assert std.data.max() > 0  # the seeds disagree between the measured slices...
    assert np.abs(std.data[::FACTOR]).max() < 1e-3  # ...and never on them


def test_training_on_the_layer_then_restoring_with_the_new_model(
    viewer, stack, wait_until, monkeypatch
):
    monkeypatch.setattr(_run, "training_config", _tiny_config)
    widget = _dock(viewer, stack)
    widget.source_combo.setCurrentIndex(list(_run.MODEL_SOURCES).index("train-quick"))
    widget.method_combo.setCurrentText("skeleton")
    seen: list[tuple[str, int, int]] = []
    widget._bridge.event.connect(lambda *event: seen.append(event))
    widget.run_button.click()
    wait_until(lambda: not widget.running, timeout=180)
    assert viewer.layers[-1].name == "stack restored (skeleton x4)", widget.status.text()
    assert viewer.layers[-1].data.shape == (29, 32, 32)
    assert ("train-skeleton", 3, 3) in seen and seen[-1] == ("blocks", 1, 1)
    model_dir = widget.model_edit.text()  # the trained folder, offered for the next run
    assert model_dir and widget.source_combo.currentData() == "folder"
    from skelem.models.artifact import load_artifact

    assert load_artifact(model_dir).stages == ["skeleton"]


def test_cancel_stops_training_and_adds_no_layer(viewer, stack, wait_until, monkeypatch):
    total = 100_000
    monkeypatch.setattr(
        _run, "training_config", lambda f, p, b: _tiny_config(f, p, b, iterations=total)
    )
    widget = _dock(viewer, stack)
    widget.source_combo.setCurrentIndex(list(_run.MODEL_SOURCES).index("train-default"))
    seen: list[tuple[str, int, int]] = []
    widget._bridge.event.connect(lambda *event: seen.append(event))
    widget.run_button.click()
    wait_until(lambda: len(seen) >= 2, timeout=120)  # training is under way
    assert widget.progress_bar.maximum() == total
    widget.cancel_button.click()
    wait_until(lambda: not widget.running, timeout=30)
    assert [layer.name for layer in viewer.layers] == ["stack"]
    assert max(step for _, step, _ in seen) < 1000  # stopped long before the end
    assert widget.status.text() == "cancelled: no layer added"
    assert widget.progress_bar.format() == "cancelled"


def test_a_layer_without_voxel_size_or_factor_is_refused_in_one_sentence(viewer, stack):
    viewer.add_image(stack, name="bare")
    _, widget = viewer.window.add_plugin_dock_widget("skelem", "Isotropic restoration")
    assert widget.voxel_edit.text() == ""  # napari's default scale says nothing
    widget.run_button.click()
    assert not widget.running and len(viewer.layers) == 1
    message = widget.status.text()
    assert message.endswith(".") and "factor" in message and "\n" not in message


def test_a_volume_too_small_for_the_budget_is_reported_in_one_sentence(viewer, stack, wait_until):
    widget = _dock(viewer, stack)  # 32 x 32 lateral: smaller than the quick budget's 64 patches
    widget.source_combo.setCurrentIndex(list(_run.MODEL_SOURCES).index("train-quick"))
    widget.run_button.click()
    wait_until(lambda: not widget.running, timeout=60)
    assert len(viewer.layers) == 1
    message = widget.status.text()
    assert "patch" in message and message.endswith(".") and "\n" not in message
