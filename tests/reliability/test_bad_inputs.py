"""The bad-input matrix: every unusable input or argument is refused safely.

Each case runs ``skelem`` and checks the whole contract: exit code 2, one ``Error:`` line holding
one sentence on stderr (no usage block, no traceback, nothing on stdout), nothing written where
the output would go, and every input file byte-for-byte as it was (SHA-256 before and after).

Arguments use placeholders: ``{in}`` the session's folder of inputs (see ``conftest.py``) and
``{out}`` an empty folder for this case's outputs, which must stay empty.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from skelem.cli.main import cli

RESTORE = ("restore", "-q", "-o", "{out}/r.tif")
CUBIC = (*RESTORE, "--method", "cubic")
SKELETON = (*RESTORE, "--method", "skeleton")
TRAIN = ("train", "-q", "--iterations", "1", "--patch-size", "16", "--stages", "skeleton")

CASES: dict[str, tuple[tuple[str, ...], list[str]]] = {
    # --- arrays that are not a (Z, Y, X) volume of numbers ---
    "npy-1d": ((*CUBIC, "{in}/d1.npy"), ["shape (32,)", "(Z, Y, X)"]),
    "npy-2d": ((*CUBIC, "{in}/d2.npy"), ["shape (32, 32)", "(Z, Y, X)"]),
    "npy-4d": ((*CUBIC, "{in}/d4.npy"), ["shape (2, 9, 32, 32)"]),
    "npy-5d": ((*CUBIC, "{in}/d5.npy"), ["shape (2, 2, 9, 32, 32)"]),
    "npy-empty": ((*CUBIC, "{in}/empty.npy"), ["is empty", "(0, 32, 32)"]),
    "npy-nan": ((*CUBIC, "{in}/nan.npy", "--factor", "4"), ["NaN or infinite", "z=5"]),
    "npy-inf": ((*CUBIC, "{in}/inf.npy", "--factor", "4"), ["NaN or infinite", "z=3"]),
    "npy-bool": ((*CUBIC, "{in}/bool.npy", "--factor", "4"), ["data type bool"]),
    "npy-complex": ((*CUBIC, "{in}/complex.npy", "--factor", "4"), ["data type complex64"]),
    "npy-object": ((*CUBIC, "{in}/object.npy", "--factor", "4"), ["Python objects"]),
    "npy-two-slices": ((*CUBIC, "{in}/two_slices.npy", "--factor", "4"), ["2 slice(s)"]),
    "npy-text": ((*CUBIC, "{in}/text.npy"), ["could not be read as NumPy"]),
    "train-constant": (
        (*TRAIN, "{in}/constant.npy", "-o", "{out}/m", "--factor", "4"),
        ["constant intensity"],
    ),
    "train-below-patch": (
        ("train", "-q", "--patch-size", "64", "{in}/v.tif", "-o", "{out}/m"),
        ["32x32", "patch"],
    ),
    # --- damaged files ---
    "tif-truncated": (
        (*CUBIC, "{in}/truncated.tif", "--factor", "4"),
        ["damaged or truncated", "announces 17 image(s), 1 found"],
    ),
    "tif-garbage": ((*CUBIC, "{in}/garbage.tif"), ["could not be read as TIFF", "damaged"]),
    "tif-empty-file": ((*CUBIC, "{in}/empty.tif"), ["could not be read as TIFF", "damaged"]),
    "zarr-without-multiscales": ((*CUBIC, "{in}/plain.zarr"), ["without OME-NGFF multiscales"]),
    "h5-group": ((*CUBIC, "{in}/data.h5:/group"), ["group, not a dataset"]),
    "h5-nothing": ((*CUBIC, "{in}/data.h5:/nothing"), ["no dataset /nothing"]),
    "h5-no-dataset": ((*CUBIC, "{in}/data.h5"), ["name the dataset"]),
    # --- the anisotropy factor ---
    "factor-0": ((*CUBIC, "{in}/v.tif", "--factor", "0"), ["factor", "0"]),
    "factor-1": ((*CUBIC, "{in}/v.tif", "--factor", "1"), ["at least 2", "got 1"]),
    "factor-minus-3": ((*CUBIC, "{in}/v.tif", "--factor", "-3"), ["factor", "-3"]),
    "factor-2.5": ((*CUBIC, "{in}/v.tif", "--factor", "2.5"), ["Non-integer", "2.5"]),
    "factor-1000": ((*CUBIC, "{in}/v.tif", "--factor", "1000"), ["maximum of 16"]),
    "factor-abc": ((*CUBIC, "{in}/v.tif", "--factor", "abc"), ["'abc' is not a valid float"]),
    # --- click's own usage errors, in one sentence too ---
    "unknown-method": ((*RESTORE, "{in}/v.tif", "--method", "bicubic"), ["'bicubic' is not one"]),
    "unknown-option": ((*CUBIC, "{in}/v.tif", "--fcator", "4"), ["No such option '--fcator'"]),
    "missing-argument": (CUBIC, ["Missing argument 'VOLUME'"]),
    "missing-output": (("restore", "{in}/v.tif"), ["Missing option '-o' / '--output'"]),
    "unknown-command": (("restroe", "{in}/v.tif"), ["No such command 'restroe'"]),
    "unknown-output-extension": (
        ("restore", "-q", "--method", "cubic", "{in}/v.tif", "-o", "{out}/r.png"),
        ["unknown extension .png"],
    ),
    # --- outputs that would destroy an input (with or without --overwrite) ---
    "output-over-input": (
        ("restore", "-q", "--method", "cubic", "{in}/v.tif", "-o", "{in}/v.tif", "--overwrite"),
        ["would replace the input volume"],
    ),
    "output-over-input-no-overwrite": (
        ("restore", "-q", "--method", "cubic", "{in}/v.tif", "-o", "{in}/v.tif"),
        ["would replace the input volume"],
    ),
    "output-over-input-via-dotdot": (
        (
            "restore",
            "-q",
            "--method",
            "cubic",
            "{in}/v.tif",
            "-o",
            "{in}/sub/../v.tif",
            "--overwrite",
        ),
        ["would replace the input volume"],
    ),
    "output-over-input-via-symlink": (
        ("restore", "-q", "--method", "cubic", "{in}/link.tif", "-o", "{in}/v.tif", "--overwrite"),
        ["would replace the input volume"],
    ),
    "output-inside-input-store": (
        ("restore", "-q", "--method", "cubic", "{in}/v.ome.zarr", "-o", "{in}/v.ome.zarr/r.tif"),
        ["inside the input volume"],
    ),
    "output-over-store-of-input-array": (
        (
            *("restore", "-q", "--method", "cubic", "{in}/v.ome.zarr/0"),
            "--overwrite",
            "-o",
            "{in}/v.ome.zarr",
        ),
        ["would replace the input volume"],
    ),
    "output-over-input-hdf5-file": (
        (
            "restore",
            "-q",
            "--method",
            "cubic",
            "{in}/v.h5:/raw",
            "-o",
            "{in}/v.h5:/r",
            "--overwrite",
        ),
        ["would replace the input volume"],
    ),
    "output-inside-model-folder": (
        (*SKELETON, "{in}/v.tif", "--model", "{in}/model", "-o", "{in}/model/r.tif"),
        ["inside the model folder"],
    ),
    "output-folder-missing": (
        ("restore", "-q", "--method", "cubic", "{in}/v.tif", "-o", "{out}/missing/r.tif"),
        ["output folder", "does not exist"],
    ),
    "simulate-over-input": (
        ("simulate", "{in}/v.tif", "-o", "{in}/v.tif", "--factor", "2", "--overwrite"),
        ["would replace the input volume"],
    ),
    "train-model-folder-holds-input": (
        (*TRAIN, "{in}/v.tif", "-o", "{in}"),
        ["holds the input volume"],
    ),
    "evaluate-json-over-reference": (
        ("evaluate", "{in}/v.tif", "--reference", "{in}/v.ome.zarr", "--json", "{in}/v.ome.zarr"),
        ["would replace the reference"],
    ),
    "benchmark-report-holds-data": (
        ("benchmark", "-q", "-o", "{in}", "--data", "{in}/v.tif", "--overwrite"),
        ["holds the data volume"],
    ),
    "phantom-labels-over-image": (
        ("phantom", "-o", "{out}/p.tif", "--labels", "{out}/p.tif", "--shape", "8,8,8"),
        ["would replace the image output"],
    ),
    # --- model folders ---
    "model-missing": ((*SKELETON, "{in}/v.tif", "--model", "{out}/nowhere"), ["does not exist"]),
    "model-empty": (
        (*SKELETON, "{in}/v.tif", "--model", "{in}/model_empty"),
        ["not a SkelEM model directory"],
    ),
    "model-corrupt-manifest": (
        (*SKELETON, "{in}/v.tif", "--model", "{in}/model_corrupt"),
        ["corrupt (not valid JSON)"],
    ),
    "model-newer-version": (
        (*SKELETON, "{in}/v.tif", "--model", "{in}/model_newer"),
        ["newer SkelEM"],
    ),
    "model-tampered-weights": (
        (*SKELETON, "{in}/v.tif", "--model", "{in}/model_tampered"),
        ["skeleton.safetensors does not match the sha256", "damaged or was modified"],
    ),
    "model-truncated-weights": (
        (*SKELETON, "{in}/v.tif", "--model", "{in}/model_truncated"),
        ["skeleton.safetensors does not match the sha256"],
    ),
    "model-other-factor": (
        (*SKELETON, "{in}/v.tif", "--model", "{in}/model_x8"),
        ["factor 8", "4"],
    ),
}

#: Cases run again as a real process: stray log lines (tifffile's) and click's own printing
#: only show there.
SUBPROCESS_CASES = [
    "tif-truncated",
    "tif-garbage",
    "factor-abc",
    "unknown-method",
    "missing-argument",
    "output-over-input",
    "model-tampered-weights",
]


def _snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (hidden ones too), by relative path; folders as ''."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[name] = ""
        else:
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _args(case: str, inputs: Path, out: Path) -> list[str]:
    return [arg.format(**{"in": inputs, "out": out}) for arg in CASES[case][0]]


def assert_refused(code: int, stdout: str, stderr: str, fragments: list[str]) -> str:
    """Exit 2, one ``Error: <one sentence>`` line and nothing else; returns the sentence."""
    assert "Traceback" not in stdout + stderr, stderr
    assert code == 2, f"exit code {code}\nstdout: {stdout}\nstderr: {stderr}"
    assert stdout.strip() == "", f"a refused command printed to stdout: {stdout}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("Error: "), lines[0]
    message = lines[0].removeprefix("Error: ")
    assert message.endswith("."), f"not a sentence: {message!r}"
    assert not re.search(r"[.!?] +[A-Z]", message), f"more than one sentence: {message!r}"
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} not in {message!r}"
    return message


@pytest.mark.parametrize("case", list(CASES))
def test_refused_with_one_sentence_nothing_written_inputs_unchanged(
    inputs: Path, tmp_path: Path, case: str
) -> None:
    before = _snapshot(inputs)
    result: Result = CliRunner().invoke(cli, _args(case, inputs, tmp_path))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {result.exception!r}; stderr: {result.stderr}"
    )
    assert_refused(result.exit_code, result.stdout, result.stderr, CASES[case][1])
    assert list(tmp_path.iterdir()) == [], "a refused command wrote an output"
    assert _snapshot(inputs) == before, "a refused command changed an input"


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_refused_in_a_real_process_too(inputs: Path, tmp_path: Path, case: str) -> None:
    before = _snapshot(inputs)
    result = subprocess.run(
        [sys.executable, "-m", "skelem.cli.main", *_args(case, inputs, tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )
    assert_refused(result.returncode, result.stdout, result.stderr, CASES[case][1])
    assert list(tmp_path.iterdir()) == []
    assert _snapshot(inputs) == before


def test_the_helps_still_print(inputs: Path) -> None:
    for args in (["--help"], ["restore", "--help"], ["restore", "-h"]):
        result = CliRunner().invoke(cli, args, prog_name="skelem")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Usage: skelem")


def test_a_good_restore_beside_the_input_still_works(inputs: Path, tmp_path: Path) -> None:
    """The refusals above are not blanket ones: the same command with a fresh output succeeds."""
    result = CliRunner().invoke(
        cli, _args("output-over-input", inputs, tmp_path)[:-3] + ["-o", str(tmp_path / "r.tif")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.tif").is_file()


API_OUTPUTS = {
    # volume opened, output, model folder (or None), words of the refusal
    "over-input": ("v.tif", "{in}/v.tif", None, "would replace the input volume"),
    "over-store-of-input-array": ("v.ome.zarr/0", "{in}/v.ome.zarr", None, "would replace"),
    "inside-input-store": ("v.ome.zarr", "{in}/v.ome.zarr/0/r.npy", None, "inside the input"),
    "inside-model-folder": ("v.tif", "{in}/model/r.tif", "model", "inside the model folder"),
    "unknown-extension": ("v.tif", "{out}/r.png", None, "unknown extension .png"),
}


@pytest.mark.parametrize("case", list(API_OUTPUTS))
def test_the_python_api_refuses_the_same_outputs(inputs: Path, tmp_path: Path, case: str) -> None:
    """``restore_to_file`` applies the rule itself, whatever ``overwrite`` says."""
    from skelem.config.restore import RestoreOptions
    from skelem.errors import InputError
    from skelem.inference.restore import restore_to_file
    from skelem.io import open_volume
    from skelem.models.artifact import load_artifact

    source, output, model, words = API_OUTPUTS[case]
    volume = open_volume(inputs / source)
    artifact = load_artifact(inputs / model) if model else None
    method = "skeleton" if model else "cubic"
    before = _snapshot(inputs)
    with pytest.raises(InputError, match=words):
        restore_to_file(
            volume,
            output.format(**{"in": inputs, "out": tmp_path}),
            artifact,
            options=RestoreOptions(method=method),
            overwrite=True,
        )
    assert list(tmp_path.iterdir()) == []
    assert _snapshot(inputs) == before


def test_train_may_continue_a_model_with_the_config_file_inside_it(
    inputs: Path, tmp_path: Path
) -> None:
    """The rule is about what an output could destroy: ``train -o model --config
    model/config.json`` (continuing a model with its own saved config) is not refused."""
    from skelem.config.models import save_config
    from skelem.models.artifact import load_artifact

    from .conftest import make_model

    model = make_model(tmp_path / "model", patch_size=16)
    save_config(load_artifact(model).config, model / "config.json")
    result = CliRunner().invoke(
        cli,
        ["train", "-q", str(inputs / "v.tif"), "-o", str(model), "--config"]
        + [str(model / "config.json"), "--stages", "skeleton", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    assert "stages skeleton" in result.stdout
