"""NPY outputs carry their provenance in a JSON sidecar (``out.npy.json``), written atomically
before the NPY file is renamed into place and stamped with its SHA-256; ``open_volume`` reads
the NPY file as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from skelem.cli.main import cli
from skelem.io import open_volume
from skelem.io.sidecar import npy_sidecar_path, read_npy_provenance


def test_a_restored_npy_has_its_provenance_beside_it(inputs: Path, tmp_path: Path) -> None:
    output = tmp_path / "r.npy"
    args = ["restore", "-q", "--method", "cubic", str(inputs / "v.tif"), "-o", str(output)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npy", "r.npy.json"]
    record = read_npy_provenance(output)
    assert record is not None
    assert (record["method"], record["factor"]) == ("cubic", 4)
    assert record["source"] == str(inputs / "v.tif")
    volume = open_volume(output)  # read as before: the array, no voxel size or metadata
    assert volume.shape == (33, 32, 32) and volume.metadata is None
    np.testing.assert_array_equal(volume.read(), np.load(output))


def test_a_sidecar_left_beside_another_file_is_not_taken_for_its_record(
    inputs: Path, tmp_path: Path
) -> None:
    output = tmp_path / "r.npy"
    args = ["restore", "-q", "--method", "cubic", str(inputs / "v.tif"), "-o", str(output)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    np.save(output, np.zeros((3, 4, 4), np.uint8))  # replaced by hand, sidecar left behind
    assert npy_sidecar_path(output).exists()
    assert read_npy_provenance(output) is None
    assert read_npy_provenance(tmp_path / "other.npy") is None  # no sidecar at all
