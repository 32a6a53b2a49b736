"""Train a tiny model with ``skelem train``, restore with it, refuse broken or foreign models."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from skelem.io import open_volume

from .cli_helpers import assert_success, assert_user_error, single_thread, skelem
from .conftest import FACTOR, ISO_VOXEL, Volumes

TINY = ("-q", "--iterations", 2, "--patch-size", 16, "--seed", 0)


@pytest.fixture(scope="module")
def model_dir(volumes: Volumes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Skeleton and refiner trained for 2 iterations on the x4 acquisition (factor from its voxel
    size)."""
    path = tmp_path_factory.mktemp("model") / "tiny"
    with single_thread():
        out = assert_success(
            skelem("train", volumes.aniso, "-o", path, "--stages", "skeleton,refiner", *TINY)
        )
    assert f"stages skeleton, refiner (factor {FACTOR};" in out
    return path


def _manifest(directory: Path) -> dict:
    return json.loads((directory / "skelem-model.json").read_text())


def test_train_writes_a_model_directory(model_dir: Path) -> None:
    manifest = _manifest(model_dir)
    assert manifest["format"] == "skelem-model"
    assert manifest["stages"] == ["skeleton", "refiner"]
    assert manifest["config"]["degradation"]["factor"] == FACTOR
    assert manifest["config"]["skeleton_training"]["iterations"] == 2
    assert manifest["config"]["refiner_training"]["patch_size"] == 16
    for name in ("skeleton.safetensors", "refiner.safetensors", "checkpoints/skeleton.pt"):
        assert (model_dir / name).is_file(), name
    reference = manifest["provenance"]["lateral_detail"]  # for restore --model's detail check
    assert reference["stages"] == ["refiner", "skeleton"] and reference["windows"] > 0
    assert len(reference["fingerprint"]) == 64
    assert "(the training volume)" in reference["measured_on"]


def test_train_says_when_no_detail_reference_was_recorded(
    volumes: Volumes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skelem.inference.detail_check as dc

    def broken(*args, **kwargs):
        raise RuntimeError("measurement broke")

    monkeypatch.setattr(dc, "lateral_detail", broken)
    model = tmp_path / "model"
    result = skelem("train", volumes.aniso, "-o", model, "--stages", "skeleton,refiner", *TINY)
    assert_success(result)  # the training is kept
    assert "No detail-check reference was recorded" in " ".join(result.stderr.split())
    assert "lateral_detail" not in _manifest(model)["provenance"]
    assert (model / "refiner.safetensors").is_file()


def test_train_again_skips_finished_stages(model_dir: Path, volumes: Volumes) -> None:
    before = (model_dir / "skeleton.safetensors").read_bytes()
    out = assert_success(
        skelem("train", volumes.aniso, "-o", model_dir, "--stages", "skeleton,refiner", *TINY)
    )
    assert "stages skeleton, refiner" in out
    assert (model_dir / "skeleton.safetensors").read_bytes() == before


def test_restore_skelem_keeps_measured_rows_and_writes_std(
    model_dir: Path, volumes: Volumes, tmp_path: Path
) -> None:
    out = tmp_path / "restored.tif"
    stdout = assert_success(
        skelem("restore", volumes.aniso, "--model", model_dir, "-o", out, "--samples", 2, "-q")
    )
    assert f"(skelem, factor {FACTOR})" in stdout  # the default method of a model with a refiner
    assert "restored_std.tif" in stdout
    acquired = np.asarray(open_volume(volumes.aniso).read())
    restored = open_volume(out)
    assert restored.shape == (FACTOR * (acquired.shape[0] - 1) + 1, 48, 48)
    assert restored.voxel_size == pytest.approx((ISO_VOXEL,) * 3)
    data = np.asarray(restored.read())
    assert data.dtype == acquired.dtype
    assert np.array_equal(data[::FACTOR], acquired)  # data consistency, in every sample
    std = np.asarray(open_volume(tmp_path / "restored_std.tif").read())
    assert std.shape == data.shape and std.dtype == np.float32
    assert np.abs(std[::FACTOR]).max() <= 1e-3 * 255
    between = np.delete(std, np.s_[::FACTOR], axis=0)
    assert between.max() > 0  # the samples differ between measured rows


def test_samples_streamed_to_ome_zarr_write_the_std_beside_the_mean(
    model_dir: Path, volumes: Volumes, tmp_path: Path
) -> None:
    """``--samples`` with an OME-Zarr output: tiled mean and std equal the in-memory ones."""
    common = ("--model", model_dir, "--samples", 2, "--dtype", "float32", "-q")
    assert_success(skelem("restore", volumes.aniso, "-o", tmp_path / "m.tif", *common))
    stdout = assert_success(
        skelem(
            "restore", volumes.aniso, "-o", tmp_path / "m.ome.zarr", "--block", "12,24,24", *common
        )
    )
    assert "m_std.ome.zarr" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.ome.zarr",
        "m.tif",
        "m_std.ome.zarr",
        "m_std.tif",
    ]
    for name in ("m", "m_std"):
        whole = np.asarray(open_volume(tmp_path / f"{name}.tif").read())
        tiled = open_volume(tmp_path / f"{name}.ome.zarr")
        assert tiled.voxel_size == pytest.approx((ISO_VOXEL,) * 3)
        np.testing.assert_allclose(np.asarray(tiled.read()), whole, rtol=0, atol=1e-2)
    std = np.asarray(open_volume(tmp_path / "m_std.ome.zarr").read())
    assert std[::FACTOR].max() <= 1e-3 * 255 and std.max() > 0


def test_samples_on_two_dask_workers_equal_one_worker(
    model_dir: Path, volumes: Volumes, tmp_path: Path
) -> None:
    """``--samples`` on 2 Dask worker processes: mean and std stores equal a 1-worker run exactly
    (the noise is keyed by coordinates, not by process)."""
    from .cli_helpers import skelem_subprocess

    common = (
        "--model",
        model_dir,
        "--samples",
        2,
        "--dtype",
        "float32",
        "--block",
        "12,48,48",
    )  # 3 blocks
    two = skelem_subprocess(
        "restore",
        volumes.aniso,
        "-o",
        tmp_path / "r.ome.zarr",
        *common,
        "--workers",
        2,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr
    assert "local Dask cluster: 2 workers" in two.stderr
    with single_thread():
        assert_success(
            skelem(
                "restore",
                volumes.aniso,
                "-o",
                tmp_path / "one.ome.zarr",
                *common,
                "-q",
                "--workers",
                1,
            )
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "one.ome.zarr",
        "one_std.ome.zarr",
        "r.ome.zarr",
        "r_std.ome.zarr",
    ]
    for name in ("", "_std"):
        np.testing.assert_array_equal(
            np.asarray(open_volume(tmp_path / f"r{name}.ome.zarr").read()),
            np.asarray(open_volume(tmp_path / f"one{name}.ome.zarr").read()),
        )
    assert np.asarray(open_volume(tmp_path / "r_std.ome.zarr").read()).max() > 0


def test_skeleton_streamed_and_tiled_equals_in_memory(
    model_dir: Path, volumes: Volumes, tmp_path: Path
) -> None:
    tif, zarr = tmp_path / "skeleton.tif", tmp_path / "skeleton.ome.zarr"
    common = ("--model", model_dir, "--method", "skeleton", "--dtype", "float32", "-q")
    assert_success(skelem("restore", volumes.aniso, "-o", tif, *common))
    assert_success(skelem("restore", volumes.aniso, "-o", zarr, "--block", "12,24,24", *common))
    whole, tiled = np.asarray(open_volume(tif).read()), np.asarray(open_volume(zarr).read())
    assert whole.dtype == tiled.dtype == np.float32
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-3)


def test_factor_that_does_not_match_the_model(
    model_dir: Path, volumes: Volumes, tmp_path: Path
) -> None:
    result = skelem(
        "restore",
        volumes.aniso,
        "--model",
        model_dir,
        "-o",
        tmp_path / "r.tif",
        "--factor",
        3,
        "--method",
        "skeleton",
        "-q",
    )
    assert_user_error(result, "trained for factor 4", "needs factor 3")


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (("--method", "diffusion"), ["no trained diffusion peer", "--stages diffusion-peer"]),
        (("--unaligned",), ["no refiner from before alignment"]),
        (("--method", "skeleton", "--samples", "2"), ["--samples needs a stochastic method"]),
        (("--t0", "5000"), ["--t0 must be between 1 and 999", "5000"]),
        (("--t0", "0"), ["--t0 must be between 1 and 999"]),
        (("--steps", "500"), ["--steps (500) cannot exceed --t0 (400)"]),
        (("--steps", "10", "--t0", "5"), ["--steps (10) cannot exceed --t0 (5)"]),
    ],
    ids=[
        "no-peer",
        "no-alignment",
        "samples-deterministic",
        "t0-too-large",
        "t0-zero",
        "steps-above-t0",
        "steps-above-given-t0",
    ],
)
def test_restore_options_the_model_cannot_serve(
    model_dir: Path,
    volumes: Volumes,
    tmp_path: Path,
    options: tuple[str, ...],
    fragments: list[str],
) -> None:
    options = tuple(o.format(tmp=tmp_path) for o in options)
    output = () if "-o" in options else ("-o", tmp_path / "r.tif")
    assert_user_error(
        skelem("restore", volumes.aniso, "--model", model_dir, "-q", *output, *options), *fragments
    )
    assert list(tmp_path.iterdir()) == []


def _edit_manifest(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        manifest = _manifest(directory)
        change(manifest)
        (directory / "skelem-model.json").write_text(json.dumps(manifest))

    return edit


def _truncate(name: str) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        path = directory / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return edit


BROKEN_MODELS: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "empty-dir": (
        lambda d: [p.unlink() for p in d.rglob("*") if p.is_file()],
        ["not a SkelEM model directory", "skelem-model.json"],
    ),
    "garbage-manifest": (
        lambda d: (d / "skelem-model.json").write_bytes(b"\x00{garbage"),
        ["manifest", "corrupt"],
    ),
    "foreign-json": (
        lambda d: (d / "skelem-model.json").write_text('{"name": "resnet"}'),
        ["not a SkelEM model manifest"],
    ),
    "newer-format": (_edit_manifest(lambda m: m.update(format_version=99)), ["newer SkelEM"]),
    "invalid-config": (
        _edit_manifest(lambda m: m["config"]["degradation"].update(factor=1)),
        ["invalid configuration"],
    ),
    "no-normalizer": (_edit_manifest(lambda m: m.pop("normalizer")), ["incomplete or corrupt"]),
    "negative-residual-scale": (
        _edit_manifest(lambda m: m.update(residual_scale=-1.0)),
        ["incomplete or corrupt"],
    ),
    "text-residual-scale": (
        _edit_manifest(lambda m: m.update(residual_scale="big")),
        ["incomplete or corrupt"],
    ),
    # weights that differ from the sha256 the manifest recorded are refused before parsing
    "truncated-weights": (
        _truncate("skeleton.safetensors"),
        ["skeleton.safetensors", "does not match the sha256", "damaged or was modified"],
    ),
    "garbage-weights": (
        lambda d: (d / "skeleton.safetensors").write_bytes(b"\xff" * 64),
        ["skeleton.safetensors", "does not match the sha256"],
    ),
    "garbage-weights-old-manifest": (  # no hash recorded (older SkelEM): safetensors says so
        lambda d: (
            (d / "skeleton.safetensors").write_bytes(b"\xff" * 64),
            _edit_manifest(lambda m: m.pop("weights_sha256"))(d),
        ),
        ["corrupt or not a safetensors file"],
    ),
    "missing-weights": (lambda d: (d / "skeleton.safetensors").unlink(), ["no trained skeleton"]),
    "stage-not-trained": (_edit_manifest(lambda m: m.update(stages=[])), ["no trained skeleton"]),
    "wider-config": (
        _edit_manifest(lambda m: m["config"]["skeleton"].update(channels=32)),
        ["does not match the configured network", "channels"],
    ),
    "deeper-config": (
        _edit_manifest(lambda m: m["config"]["skeleton"].update(depth=2)),
        ["does not match the configured network"],
    ),
}


@pytest.mark.parametrize(
    ("damage", "fragments"), list(BROKEN_MODELS.values()), ids=list(BROKEN_MODELS)
)
def test_corrupt_or_foreign_model_directory(
    model_dir: Path,
    volumes: Volumes,
    tmp_path: Path,
    damage: Callable[[Path], None],
    fragments: list[str],
) -> None:
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    damage(broken)
    result = skelem(
        "restore",
        volumes.aniso,
        "--model",
        broken,
        "-o",
        tmp_path / "r.tif",
        "--method",
        "skeleton",
        "-q",
    )
    assert_user_error(result, *fragments)
    assert not (tmp_path / "r.tif").exists()


def test_train_refuses_a_model_made_with_other_options(
    model_dir: Path, volumes: Volumes, tmp_path: Path
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    result = skelem(
        "train",
        volumes.aniso,
        "-o",
        copy,
        "-q",
        "--iterations",
        3,
        "--patch-size",
        16,
        "--stages",
        "skeleton",
    )
    assert_user_error(result, "another configuration")


def test_train_refuses_a_foreign_directory(volumes: Volumes, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = skelem("train", volumes.aniso, "-o", tmp_path, "--stages", "skeleton", *TINY)
    assert_user_error(result, "is not a SkelEM model directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_train_takes_the_factor_from_the_voxel_size(volumes: Volumes, tmp_path: Path) -> None:
    """A x2 acquisition trains a x2 model without --factor (the config default is 4)."""
    aniso2 = tmp_path / "aniso2.tif"
    assert_success(skelem("simulate", volumes.iso, "-o", aniso2, "--factor", 2))
    out = assert_success(
        skelem(
            "train",
            aniso2,
            "-o",
            tmp_path / "m2",
            "--stages",
            "skeleton",
            "-q",
            "--iterations",
            1,
            "--patch-size",
            16,
        )
    )
    assert "(factor 2;" in out
    assert _manifest(tmp_path / "m2")["config"]["degradation"]["factor"] == 2


def test_restore_refuses_a_missing_output_folder_before_any_work(
    model_dir: Path, volumes: Volumes, tmp_path: Path
) -> None:
    """A network restore into a folder that does not exist fails at once, not after restoring."""
    message = assert_user_error(
        skelem(
            "restore",
            volumes.aniso,
            "--model",
            model_dir,
            "-o",
            tmp_path / "nowhere" / "o.tif",
            "-q",
        ),
        "does not exist",
    )
    assert "nowhere" in message
