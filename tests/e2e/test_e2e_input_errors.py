"""Every unusable input ends in one ``Error:`` sentence on stderr, exit code 2 and no traceback.

Arguments use placeholders: ``{bad}`` the folder of broken inputs, ``{iso}``/``{aniso}`` the
session's phantom and its x4 acquisition, ``{tmp}`` this test's empty folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .cli_helpers import assert_user_error, skelem
from .conftest import Volumes

TRAIN = (
    "train",
    "-o",
    "{tmp}/model",
    "-q",
    "--iterations",
    "2",
    "--patch-size",
    "16",
    "--stages",
    "skeleton",
)
RESTORE = ("restore", "-o", "{tmp}/out.tif", "-q")

CASES = {
    # --- shape and data type (info, simulate, train, restore) ---
    "info-2d": (("info", "{bad}/flat.npy"), ["shape (40, 48)", "(Z, Y, X) volume is needed"]),
    "info-4d": (("info", "{bad}/stack4d.npy"), ["shape (2, 9, 48, 48)", "(Z, Y, X)"]),
    "info-complex": (("info", "{bad}/complex.npy"), ["complex64", "does not read", "float32"]),
    "simulate-2d": (
        ("simulate", "{bad}/flat.npy", "-o", "{tmp}/s.tif", "--factor", "4"),
        ["shape (40, 48)"],
    ),
    "simulate-4d": (
        ("simulate", "{bad}/stack4d.npy", "-o", "{tmp}/s.tif", "--factor", "4"),
        ["shape (2, 9, 48, 48)"],
    ),
    "simulate-complex": (
        ("simulate", "{bad}/complex.npy", "-o", "{tmp}/s.tif", "--factor", "2"),
        ["complex64"],
    ),
    "train-2d": ((*TRAIN, "{bad}/flat.npy", "--factor", "4"), ["shape (40, 48)"]),
    "train-4d": ((*TRAIN, "{bad}/stack4d.npy", "--factor", "4"), ["shape (2, 9, 48, 48)"]),
    "train-complex": ((*TRAIN, "{bad}/complex.npy", "--factor", "4"), ["complex64"]),
    "restore-4d": ((*RESTORE, "{bad}/stack4d.npy", "--factor", "4"), ["shape (2, 9, 48, 48)"]),
    "restore-complex": ((*RESTORE, "{bad}/complex.npy", "--factor", "4"), ["complex64"]),
    # --- NaN / infinity: refused by the commands that compute with the voxels ---
    "train-nan": ((*TRAIN, "{bad}/nan.npy", "--factor", "4"), ["NaN or infinite", "z=5"]),
    "train-inf": ((*TRAIN, "{bad}/inf.npy", "--factor", "4"), ["NaN or infinite", "z=3"]),
    "restore-nan": (
        (*RESTORE, "{bad}/nan.npy", "--factor", "4", "--method", "cubic"),
        ["NaN or infinite", "z=5"],
    ),
    "restore-inf": (
        (*RESTORE, "{bad}/inf.npy", "--factor", "4", "--method", "cubic"),
        ["NaN or infinite", "z=3"],
    ),
    "simulate-nan": (
        ("simulate", "{bad}/nan.npy", "-o", "{tmp}/s.tif", "--factor", "2"),
        ["NaN or infinite"],
    ),
    # --- anisotropy factor ---
    "simulate-factor-1": (
        ("simulate", "{iso}", "-o", "{tmp}/s.tif", "--factor", "1"),
        ["at least 2", "got 1"],
    ),
    "simulate-factor-2.5": (
        ("simulate", "{iso}", "-o", "{tmp}/s.tif", "--factor", "2.5"),
        ["Non-integer anisotropy factor 2.5", "resample"],
    ),
    "simulate-factor-17": (
        ("simulate", "{iso}", "-o", "{tmp}/s.tif", "--factor", "17"),
        ["maximum of 16"],
    ),
    "simulate-offset": (
        ("simulate", "{iso}", "-o", "{tmp}/s.tif", "--factor", "4", "--offset", "4"),
        ["offset 4", "smaller than the factor 4"],
    ),
    "simulate-too-few-slices": (
        ("simulate", "{aniso}", "-o", "{tmp}/s.tif", "--factor", "8"),
        ["9 slice(s)", "at least 16"],
    ),
    "train-factor-1.5": ((*TRAIN, "{aniso}", "--factor", "1.5"), ["at least 2", "1.5"]),
    "train-factor-2.5": (
        (*TRAIN, "{aniso}", "--factor", "2.5"),
        ["Non-integer anisotropy factor 2.5"],
    ),
    "train-no-voxel-size": ((*TRAIN, "{bad}/unscaled.npy"), ["no voxel size", "--factor"]),
    "restore-voxel-ratio-2.5": (
        (*RESTORE, "{aniso}", "--method", "cubic", "--voxel-size", "0.025,0.01,0.01"),
        ["Non-integer anisotropy factor 2.5"],
    ),
    "restore-no-voxel-size": (
        (*RESTORE, "{bad}/unscaled.npy", "--method", "cubic"),
        ["no voxel size", "--factor"],
    ),
    # --- files that are missing, incomplete or damaged ---
    "info-missing": (("info", "{tmp}/nowhere.tif"), ["nowhere.tif does not exist"]),
    "simulate-missing": (
        ("simulate", "{tmp}/nowhere.npy", "-o", "{tmp}/s.tif", "--factor", "4"),
        ["does not exist"],
    ),
    "train-missing": ((*TRAIN, "{tmp}/nowhere.tif", "--factor", "4"), ["does not exist"]),
    "restore-missing": (
        (*RESTORE, "{tmp}/nowhere.h5:/raw", "--factor", "4"),
        ["nowhere.h5 does not exist"],
    ),
    "info-h5-no-dataset": (("info", "{bad}/data.h5"), ["name the dataset", "/raw"]),
    "info-h5-missing-dataset": (("info", "{bad}/data.h5:/volume"), ["no dataset /volume", "/raw"]),
    "info-h5-group": (("info", "{bad}/data.h5:/group"), ["group, not a dataset"]),
    "train-h5-no-dataset": ((*TRAIN, "{bad}/data.h5", "--factor", "4"), ["name the dataset"]),
    "info-garbage-tif": (("info", "{bad}/garbage.tif"), ["could not be read as TIFF", "damaged"]),
    "info-garbage-h5": (("info", "{bad}/garbage.h5"), ["could not be read as HDF5"]),
    "info-garbage-npy": (("info", "{bad}/garbage.npy"), ["could not be read as NumPy"]),
    "restore-garbage-tif": (
        (*RESTORE, "{bad}/garbage.tif", "--factor", "4"),
        ["could not be read as TIFF"],
    ),
    "info-unknown-format": (("info", "{bad}"), ["not a zarr store"]),
    "train-config-missing": (
        (*TRAIN, "{aniso}", "--config", "{tmp}/nowhere.json"),
        ["Config file", "does not exist"],
    ),
    # --- sizes ---
    "train-smaller-than-patch": (
        ("train", "{bad}/thin16.npy", "-o", "{tmp}/model", "-q", "--factor", "4"),
        ["48x48", "patch (64)", "--patch-size"],
    ),
    "train-patch-not-multiple": (
        (*TRAIN[:-2], "{aniso}", "--patch-size", "20"),
        ["patch size 20", "multiple of 8"],
    ),
    "restore-two-slices": (
        (*RESTORE, "{bad}/two_slices.npy", "--factor", "4", "--method", "cubic"),
        ["2 slice(s)", "at least 3"],
    ),
    # --- option values ---
    "restore-unknown-method": (
        (*RESTORE, "{aniso}", "--method", "bicubic"),
        ["'bicubic' is not one of"],
    ),
    "restore-network-without-model": (
        (*RESTORE, "{aniso}", "--method", "skeleton"),
        ["no pretrained model for factor 4", "--model"],
    ),
    "restore-samples-0": (
        (*RESTORE, "{aniso}", "--samples", "0"),
        ["--samples must be at least 1"],
    ),
    "restore-batch-size-0": (
        (*RESTORE, "{aniso}", "--batch-size", "0"),
        ["--batch-size must be at least 1"],
    ),
    "restore-bad-block": (
        (*RESTORE, "{aniso}", "--block", "16,32"),
        ["--block", "three positive numbers"],
    ),
    "restore-output-folder-missing": (
        ("restore", "{aniso}", "-o", "{tmp}/no/out.tif", "-q", "--method", "cubic"),
        ["output folder", "does not exist"],
    ),
    "simulate-unknown-profile": (
        ("simulate", "{iso}", "-o", "{tmp}/s.tif", "--factor", "4", "--profile", "lorentz"),
        ["Unknown slice profile 'lorentz'"],
    ),
    "simulate-profile-no-sigma": (
        ("simulate", "{iso}", "-o", "{tmp}/s.tif", "--factor", "4", "--profile", "gaussian"),
        ["needs a sigma"],
    ),
    "simulate-profile-bad-number": (
        ("simulate", "{iso}", "-o", "{tmp}/s.tif", "--factor", "4", "--profile", "box:thick"),
        ["not a number"],
    ),
    "train-bad-profile": ((*TRAIN, "{aniso}", "--profile", "gaussian:-1"), ["must be positive"]),
    "train-unknown-stage": (
        (*TRAIN[:-2], "{aniso}", "--stages", "skeleton,polish"),
        ["Unknown stage 'polish'"],
    ),
    "phantom-shape-two-numbers": (
        ("phantom", "-o", "{tmp}/p.tif", "--shape", "33,48"),
        ["--shape", "three positive numbers"],
    ),
    "phantom-shape-words": (
        ("phantom", "-o", "{tmp}/p.tif", "--shape", "a,b,c"),
        ["--shape", "'a,b,c'"],
    ),
    "phantom-shape-tiny": (
        ("phantom", "-o", "{tmp}/p.tif", "--shape", "4,48,48"),
        ["at least 8 voxels"],
    ),
    "phantom-voxel-zero": (
        ("phantom", "-o", "{tmp}/p.tif", "--shape", "8,8,8", "--voxel-size", "0,1,1"),
        ["--voxel-size", "positive"],
    ),
    "phantom-unknown-kind": (
        ("phantom", "-o", "{tmp}/p.tif", "--kind", "xray"),
        ["'xray' is not one of"],
    ),
    "phantom-unknown-suffix": (("phantom", "-o", "{tmp}/p.png", "--shape", "8,8,8"), ["p.png"]),
    "evaluate-shape-mismatch": (
        ("evaluate", "{iso}", "--reference", "{aniso}"),
        ["differ in shape"],
    ),
    "evaluate-border-too-wide": (
        ("evaluate", "{aniso}", "--reference", "{aniso}", "--border", "8"),
        ["border of 8 leaves nothing"],
    ),
}


@pytest.mark.parametrize(("args", "fragments"), list(CASES.values()), ids=list(CASES))
def test_bad_input_gives_one_sentence_and_exit_2(
    volumes: Volumes, tmp_path: Path, args: tuple[str, ...], fragments: list[str]
) -> None:
    places = {"bad": volumes.bad, "iso": volumes.iso, "aniso": volumes.aniso, "tmp": tmp_path}
    result = skelem(*(arg.format(**places) for arg in args))
    assert_user_error(result, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a failed command left files behind"


def test_info_reports_a_volume_with_nan_without_failing(volumes: Volumes) -> None:
    """``info`` only describes: the finite range, how many voxels are NaN (train/restore refuse)."""
    result = skelem("info", volumes.bad / "nan.npy")
    assert result.exit_code == 0, result.output
    assert "shape:       9 x 48 x 48" in result.stdout
    intensity = result.stdout.split("intensity:")[1].splitlines()[0]
    assert "nan" not in intensity.lower() and "finite values" in intensity
    assert "non-finite:  1 voxels are NaN or Inf" in result.stdout  # one NaN, at z=5
    clean = skelem("info", volumes.iso)
    assert "non-finite" not in clean.stdout


BENCHMARK_CASES = {
    "benchmark-factors-words": (("benchmark", "--factors", "abc"), ["--factors", "'abc'"]),
    "benchmark-factor-1": (("benchmark", "--factors", "1"), ["at least 2"]),
    "benchmark-data-missing": (("benchmark", "--data", "{tmp}/nowhere.tif"), ["does not exist"]),
    "benchmark-paired-one-path": (("benchmark", "--paired", "{iso}"), ["--paired takes ANISO,ISO"]),
    "demo-factor-1": (("demo", "--factor", "1"), ["at least 2"]),
    "demo-factor-2.5": (("demo", "--factor", "2.5"), ["--factor", "2.5"]),
}


@pytest.mark.parametrize(
    ("args", "fragments"), list(BENCHMARK_CASES.values()), ids=list(BENCHMARK_CASES)
)
def test_bad_benchmark_options_give_one_sentence_and_exit_2(
    volumes: Volumes, tmp_path: Path, args: tuple[str, ...], fragments: list[str]
) -> None:
    places = {"iso": volumes.iso, "tmp": tmp_path}
    args = tuple(arg.format(**places) for arg in args)
    assert_user_error(skelem(*args, "-o", tmp_path / "report", "-q"), *fragments)


def test_refused_benchmark_leaves_no_report_folder(tmp_path: Path) -> None:
    assert_user_error(skelem("benchmark", "-o", tmp_path / "report", "--factors", "1", "-q"))
    assert not (tmp_path / "report").exists()


def test_evaluate_refuses_an_acquisition_that_does_not_fit_the_prediction(volumes: Volumes) -> None:
    """2 slices at factor 4 restore to 5 slices, not the 33 of the prediction."""
    result = skelem(
        "evaluate",
        volumes.iso,
        "--reference",
        volumes.iso,
        "--factor",
        4,
        "--acquired",
        volumes.bad / "two_slices.npy",
    )
    assert_user_error(result, "two_slices.npy")
