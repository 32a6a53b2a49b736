"""Interpolation without a model: phantom -> info -> simulate -> restore -> evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skelem.io import open_volume

from .cli_helpers import assert_success, assert_user_error, skelem
from .conftest import FACTOR, ISO_SHAPE, ISO_VOXEL, Volumes


def _read(path: Path) -> np.ndarray:
    return np.asarray(open_volume(path).read())


def test_phantom_info_reports_requested_shape_and_voxel_size(volumes: Volumes) -> None:
    out = assert_success(skelem("info", volumes.iso))
    assert "shape:       33 x 48 x 48 (Z, Y, X)" in out
    assert "dtype:       uint8" in out
    assert f"voxel size:  {ISO_VOXEL:g} x {ISO_VOXEL:g} x {ISO_VOXEL:g} micrometer" in out
    assert "anisotropy:  1 (Z / X)" in out
    volume = open_volume(volumes.iso)
    assert volume.shape == ISO_SHAPE
    assert volume.voxel_size == pytest.approx((ISO_VOXEL,) * 3)


def test_phantom_is_deterministic_and_seeded(tmp_path: Path, volumes: Volumes) -> None:
    shape = ",".join(map(str, ISO_SHAPE))
    assert_success(skelem("phantom", "-o", tmp_path / "same.npy", "--shape", shape, "--seed", 3))
    assert_success(skelem("phantom", "-o", tmp_path / "other.npy", "--shape", shape, "--seed", 4))
    assert np.array_equal(_read(tmp_path / "same.npy"), _read(volumes.iso))
    assert not np.array_equal(_read(tmp_path / "other.npy"), _read(volumes.iso))


def test_simulate_keeps_every_fourth_slice_exactly(volumes: Volumes) -> None:
    iso, aniso = _read(volumes.iso), _read(volumes.aniso)
    assert aniso.shape == (9, 48, 48)
    assert aniso.dtype == iso.dtype
    assert np.array_equal(aniso, iso[::FACTOR])
    out = assert_success(skelem("info", volumes.aniso))
    assert f"voxel size:  {FACTOR * ISO_VOXEL:g} x {ISO_VOXEL:g} x {ISO_VOXEL:g} micrometer" in out
    assert f"anisotropy:  {FACTOR} (Z / X)" in out


def test_simulate_offset_starts_at_that_slice(tmp_path: Path, volumes: Volumes) -> None:
    out = tmp_path / "offset.tif"
    assert_success(skelem("simulate", volumes.iso, "-o", out, "--factor", FACTOR, "--offset", 1))
    assert np.array_equal(_read(out), _read(volumes.iso)[1::FACTOR])


def test_restore_cubic_gives_the_isotropic_grid(tmp_path: Path, volumes: Volumes) -> None:
    out = tmp_path / "cubic.tif"
    stdout = assert_success(skelem("restore", volumes.aniso, "-o", out, "-q", "--method", "cubic"))
    assert "(cubic, factor 4)" in stdout
    restored, acquired = open_volume(out), _read(volumes.aniso)
    assert restored.shape == (FACTOR * (acquired.shape[0] - 1) + 1, 48, 48) == ISO_SHAPE
    assert restored.voxel_size == pytest.approx((ISO_VOXEL,) * 3)  # z divided by 4
    data = np.asarray(restored.read())
    assert data.dtype == acquired.dtype
    assert np.array_equal(data[::FACTOR], acquired)  # measured rows untouched
    assert not np.array_equal(data[1::FACTOR], data[::FACTOR][:-1])  # and something in between


def test_streamed_ome_zarr_equals_the_tif(tmp_path: Path, volumes: Volumes) -> None:
    tif, zarr = tmp_path / "cubic.tif", tmp_path / "cubic.ome.zarr"
    assert_success(skelem("restore", volumes.aniso, "-o", tif, "-q", "--method", "cubic"))
    # Small blocks: the streamed run is tiled, the TIFF run is one block.
    assert_success(
        skelem(
            "restore", volumes.aniso, "-o", zarr, "-q", "--method", "cubic", "--block", "12,24,24"
        )
    )
    assert not (tmp_path / "cubic.ome.zarr.partial").exists()
    streamed = open_volume(zarr)
    assert streamed.voxel_size == pytest.approx((ISO_VOXEL,) * 3)
    assert np.array_equal(np.asarray(streamed.read()), _read(tif))


def test_evaluate_cubic_against_the_phantom(tmp_path: Path, volumes: Volumes) -> None:
    restored, report = tmp_path / "cubic.tif", tmp_path / "measures.json"
    assert_success(skelem("restore", volumes.aniso, "-o", restored, "-q", "--method", "cubic"))
    stdout = assert_success(
        skelem(
            "evaluate",
            restored,
            "--reference",
            volumes.iso,
            "--json",
            report,
            "--factor",
            FACTOR,
            "--acquired",
            volumes.aniso,
        )
    )
    assert "PSNR" in stdout and "SSIM" in stdout
    assert "measured slices: max |error| 0;" in stdout
    measures = json.loads(report.read_text())
    assert {"psnr", "ssim"} <= measures.keys()
    assert 10 < measures["psnr"] < 60
    assert 0 < measures["ssim"] < 1
    # The measured slices are exact, so the restored volume beats nearest-slice interpolation.
    nearest, worse = tmp_path / "nearest.tif", tmp_path / "nearest.json"
    assert_success(skelem("restore", volumes.aniso, "-o", nearest, "-q", "--method", "nearest"))
    assert_success(skelem("evaluate", nearest, "--reference", volumes.iso, "--json", worse))
    assert json.loads(worse.read_text())["psnr"] < measures["psnr"]


@pytest.mark.parametrize("command", ["phantom", "simulate", "restore"])
def test_existing_output_needs_overwrite(tmp_path: Path, volumes: Volumes, command: str) -> None:
    out = tmp_path / "out.tif"
    first, second = {
        "phantom": (
            ("phantom", "-o", out, "--shape", "16,24,24", "--seed", 1),
            ("phantom", "-o", out, "--shape", "16,24,24", "--seed", 2),
        ),
        "simulate": (
            ("simulate", volumes.iso, "-o", out, "--factor", 4),
            ("simulate", volumes.iso, "-o", out, "--factor", 2),
        ),
        "restore": (
            ("restore", volumes.aniso, "-o", out, "-q", "--method", "nearest"),
            ("restore", volumes.aniso, "-o", out, "-q", "--method", "cubic"),
        ),
    }[command]
    assert_success(skelem(*first))
    before = out.read_bytes()
    assert_user_error(skelem(*second), str(out), "exists", "--overwrite")
    assert out.read_bytes() == before
    assert_success(skelem(*second, "--overwrite"))
    assert out.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]  # no temporary left


def test_existing_std_output_is_refused_before_any_work(tmp_path: Path, volumes: Volumes) -> None:
    out, std = tmp_path / "out.tif", tmp_path / "out_std.tif"
    std.write_bytes(b"keep me")
    assert_user_error(
        skelem("restore", volumes.aniso, "-o", out, "-q", "--method", "cubic", "--samples", 2),
        "out_std.tif exists",
    )
    assert not out.exists()
    assert std.read_bytes() == b"keep me"


def test_hdf5_dataset_uri_and_voxel_override(tmp_path: Path, volumes: Volumes) -> None:
    """A ``file.h5:/dataset`` input restores like the TIFF once its voxel size is given."""
    h5 = tmp_path / "aniso.h5"
    assert_success(skelem("simulate", volumes.iso, "-o", f"{h5}:/em/raw", "--factor", FACTOR))
    out = assert_success(skelem("info", f"{h5}:/em/raw", "--voxel-size", "0.032,0.008,0.008"))
    assert "shape:       9 x 48 x 48" in out and "anisotropy:  4" in out
    assert_success(
        skelem(
            "restore",
            f"{h5}:/em/raw",
            "-o",
            tmp_path / "r.npy",
            "-q",
            "--method",
            "cubic",
            "--factor",
            4,
        )
    )
    assert np.array_equal(_read(tmp_path / "r.npy")[::FACTOR], _read(volumes.aniso))
