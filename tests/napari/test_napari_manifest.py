"""The plugin's npe2 manifest validates and the core package never imports Qt or napari."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata, resources

import pytest

pytest.importorskip("npe2", reason="napari is not installed (pip install 'skelem[napari]')")


def test_manifest_is_shipped_and_registered():
    manifest = resources.files("skelem.napari") / "napari.yaml"
    assert manifest.is_file()
    points = metadata.entry_points(group="napari.manifest")
    assert [p.value for p in points if p.name == "skelem"] == ["skelem.napari:napari.yaml"]


def test_npe2_validate_passes_with_imports():
    done = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "skelem", "--imports"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout


def test_manifest_names_the_widget_reader_and_sample():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("skelem")
    assert [w.display_name for w in manifest.contributions.widgets] == ["Isotropic restoration"]
    patterns = manifest.contributions.readers[0].filename_patterns
    assert {"*.tif", "*.h5:*", "*.npy", "*.zarr"} <= set(patterns)
    assert [s.key for s in manifest.contributions.sample_data] == ["fibsem_x4"]


def test_core_package_imports_no_qt_and_no_napari():
    code = (
        "import sys, skelem, skelem.cli.main, skelem.inference.restore, skelem.training.pipeline, "
        "skelem.io, skelem.models.pretrained, skelem.evaluation.benchmark\n"
        "from skelem.cli.main import main\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'napari', 'vispy', 'superqt'))\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
