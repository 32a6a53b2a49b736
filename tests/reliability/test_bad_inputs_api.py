"""The bad-input matrix through the Python API: the cases of ``test_bad_inputs.py`` without the CLI.

A script or a notebook calls :func:`skelem.io.open_volume`, :class:`skelem.io.Volume`,
:func:`skelem.config.models.build_config`, :class:`~skelem.config.restore.RestoreOptions`,
:func:`skelem.models.artifact.load_artifact`, :func:`skelem.inference.restore.restore_volume` /
:func:`~skelem.inference.restore.restore_to_file`, :func:`skelem.training.pipeline.train_model`
and :func:`skelem.io.write_volume` (the calls ``docs/cluster.md`` and ``skelem train`` make). Each
case checks what the CLI matrix checks, minus the exit code: the call raises the named
:class:`~skelem.errors.SkelEMError` subclass (never a numpy, torch, zarr or OS exception) whose
message is one sentence holding the given words, nothing is written where the output would go,
and every input file is byte-for-byte as it was (SHA-256 before and after).

Every case of the CLI matrix either has an API counterpart here (under the same name, the data
cases through three entry points) or is listed in :data:`CLI_ONLY` with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from skelem.config.models import build_config
from skelem.config.restore import RestoreOptions
from skelem.errors import ConfigError, InputError, ModelError, OutputExistsError, SkelEMError
from skelem.inference.restore import restore_to_file, restore_volume
from skelem.io import Volume, open_volume, write_volume
from skelem.models.artifact import load_artifact
from skelem.training.pipeline import train_model

from .conftest import FACTOR, TINY
from .test_bad_inputs import CASES, _snapshot

#: A call of the API with the session's inputs folder and this case's (empty) output folder.
Call = Callable[[Path, Path], object]


def tiny_config(patch_size: int = 16, factor: int = FACTOR):
    """The networks of ``conftest.make_model`` (so its model folders can start a training)."""
    return build_config(
        {
            "degradation": {"factor": factor},
            "skeleton": TINY,
            "refiner": TINY,
            "diffusion_peer": TINY,
            "skeleton_training": {"patch_size": patch_size, "iterations": 1},
            "device": "cpu",
        }
    )


def restore(
    source: str,
    output: str = "{out}/r.tif",
    *,
    factor: object = None,
    model: str | None = None,
    method: str | None = "cubic",
    overwrite: bool = False,
) -> Call:
    """``restore_to_file`` of ``{in}/source`` to ``output`` (``{in}``, ``{out}`` placeholders)."""

    def call(inputs: Path, out: Path) -> object:
        places = {"in": inputs, "out": out}
        artifact = load_artifact(inputs / model) if model else None
        return restore_to_file(
            open_volume(f"{inputs}/{source}"),
            output.format(**places),
            artifact,
            factor=factor,  # type: ignore[arg-type]
            options=RestoreOptions(method=method if model is None else "skeleton"),
            overwrite=overwrite,
        )

    return call


def train(
    source: str, model_dir: str = "{out}/m", patch_size: int = 16, init: str | None = None
) -> Call:
    """``train_model`` of the skeleton stage on ``{in}/source`` into ``model_dir``."""

    def call(inputs: Path, out: Path) -> object:
        places = {"in": inputs, "out": out}
        return train_model(
            open_volume(f"{inputs}/{source}"),
            model_dir.format(**places),
            tiny_config(patch_size),
            ["skeleton"],
            init_from=load_artifact(inputs / init) if init else None,
        )

    return call


def restore_in_memory(source: str, model: str | None = None) -> Call:
    """``restore_volume`` of ``{in}/source`` (nothing to write)."""

    def call(inputs: Path, out: Path) -> object:
        artifact = load_artifact(inputs / model) if model else None
        method = "skeleton" if model else "cubic"
        return restore_volume(
            open_volume(f"{inputs}/{source}"),
            artifact,
            factor=None if model else FACTOR,
            options=RestoreOptions(method=method),
        )

    return call


def opening(source: str) -> Call:
    return lambda inputs, out: open_volume(f"{inputs}/{source}")


def loading(model: str) -> Call:
    """``load_artifact`` of ``model`` (``{in}``, ``{out}`` placeholders)."""
    return lambda inputs, out: load_artifact(model.format(**{"in": inputs, "out": out}))


#: The data cases of the CLI matrix (file, factor given or not), each run through
#: ``restore_to_file``, ``restore_volume`` and ``train_model``.
DATA_CASES: dict[str, str] = {
    "npy-1d": "d1.npy",
    "npy-2d": "d2.npy",
    "npy-4d": "d4.npy",
    "npy-5d": "d5.npy",
    "npy-empty": "empty.npy",
    "npy-nan": "nan.npy",
    "npy-inf": "inf.npy",
    "npy-bool": "bool.npy",
    "npy-complex": "complex.npy",
    "npy-object": "object.npy",
    "npy-two-slices": "two_slices.npy",
    "npy-text": "text.npy",
    "tif-truncated": "truncated.tif",
    "tif-garbage": "garbage.tif",
    "tif-empty-file": "empty.tif",
    "zarr-without-multiscales": "plain.zarr",
    "h5-group": "data.h5:/group",
    "h5-nothing": "data.h5:/nothing",
    "h5-no-dataset": "data.h5",
}

ENTRY_POINTS: dict[str, Callable[[str], Call]] = {
    "restore_to_file": lambda source: restore(source, factor=FACTOR),
    "restore_volume": restore_in_memory,
    "train_model": train,
}

#: The factor cases of the CLI matrix, through ``restore_to_file`` and ``build_config``.
FACTORS: dict[str, object] = {
    "factor-0": 0,
    "factor-1": 1,
    "factor-minus-3": -3,
    "factor-2.5": 2.5,
    "factor-1000": 1000,
    "factor-abc": "abc",
}

#: name -> (call, error class, words of the message; ``None``: the CLI case's words).
API_CASES: dict[str, tuple[Call, type[SkelEMError], list[str] | None]] = {
    "train-constant": (train("constant.npy"), InputError, None),
    "train-below-patch": (train("v.tif", patch_size=64), InputError, None),
    "unknown-method": (
        lambda inputs, out: RestoreOptions(method="bicubic"),  # type: ignore[arg-type]
        ConfigError,
        ["Unknown method 'bicubic'"],
    ),
    "unknown-output-extension": (restore("v.tif", "{out}/r.png"), InputError, None),
    # --- outputs that would destroy an input, overwrite or not ---
    "output-over-input": (restore("v.tif", "{in}/v.tif", overwrite=True), InputError, None),
    "output-over-input-no-overwrite": (restore("v.tif", "{in}/v.tif"), InputError, None),
    "output-over-input-via-dotdot": (
        restore("v.tif", "{in}/sub/../v.tif", overwrite=True),
        InputError,
        None,
    ),
    "output-over-input-via-symlink": (
        restore("link.tif", "{in}/v.tif", overwrite=True),
        InputError,
        None,
    ),
    "output-inside-input-store": (restore("v.ome.zarr", "{in}/v.ome.zarr/r.tif"), InputError, None),
    "output-over-store-of-input-array": (
        restore("v.ome.zarr/0", "{in}/v.ome.zarr", overwrite=True),
        InputError,
        None,
    ),
    "output-over-input-hdf5-file": (
        restore("v.h5:/raw", "{in}/v.h5:/r", overwrite=True),
        InputError,
        None,
    ),
    "output-inside-model-folder": (
        restore("v.tif", "{in}/model/r.tif", model="model", overwrite=True),
        InputError,
        None,
    ),
    "output-folder-missing": (restore("v.tif", "{out}/missing/r.tif"), InputError, None),
    "train-model-folder-holds-input": (train("v.tif", "{in}"), InputError, None),
    "train-model-folder-is-input": (
        train("v.tif", "{in}/v.tif"),
        InputError,
        ["would replace the input volume"],
    ),
    "train-model-folder-inside-input-store": (
        train("v.ome.zarr", "{in}/v.ome.zarr/m"),
        InputError,
        ["inside the input volume"],
    ),
    "train-model-folder-is-a-file": (
        train("v.tif", "{in}/d1.npy"),
        ModelError,
        ["is a file, not a model directory"],
    ),
    "train-model-folder-is-starting-model": (
        train("v.tif", "{in}/model", init="model"),
        InputError,
        ["would replace the starting model"],
    ),
    # --- model folders ---
    "model-missing": (loading("{out}/nowhere"), ModelError, None),
    "model-empty": (loading("{in}/model_empty"), ModelError, None),
    "model-corrupt-manifest": (loading("{in}/model_corrupt"), ModelError, None),
    "model-newer-version": (loading("{in}/model_newer"), ModelError, None),
    "model-is-a-file": (loading("{in}/v.tif"), ModelError, ["is a file, not a model directory"]),
    "model-tampered-weights": (restore("v.tif", model="model_tampered"), ModelError, None),
    "model-tampered-weights-in-memory": (
        restore_in_memory("v.tif", model="model_tampered"),
        ModelError,
        CASES["model-tampered-weights"][1],
    ),
    "model-tampered-weights-fine-tuning": (
        train("v.tif", init="model_tampered"),
        ModelError,
        CASES["model-tampered-weights"][1],
    ),
    "model-truncated-weights": (restore("v.tif", model="model_truncated"), ModelError, None),
    "model-other-factor": (restore("v.tif", model="model_x8"), ModelError, None),
    "model-other-factor-in-memory": (
        restore_in_memory("v.tif", model="model_x8"),
        ModelError,
        CASES["model-other-factor"][1],
    ),
    # --- arrays handed over in memory, and write_volume ---
    "memory-2d-array": (
        lambda inputs, out: restore_volume(Volume(np.zeros((4, 4))), factor=FACTOR),
        InputError,
        ["shape (4, 4)", "(Z, Y, X)"],
    ),
    "memory-ragged-list": (
        lambda inputs, out: restore_volume(Volume([[[1.0, 2.0], [3.0]]]), factor=FACTOR),
        InputError,
        ["not an array of numbers"],
    ),
    "write-volume-2d": (
        lambda inputs, out: write_volume(out / "w.tif", np.zeros((4, 4)), None),
        InputError,
        ["shape (4, 4)", "not (Z, Y, X)"],
    ),
    "write-volume-complex": (
        lambda inputs, out: write_volume(out / "w.tif", np.zeros((3, 4, 4), complex), None),
        InputError,
        ["complex128 is not supported"],
    ),
    "write-volume-missing-folder": (
        lambda inputs, out: write_volume(out / "missing" / "w.tif", np.zeros((3, 4, 4)), None),
        InputError,
        ["output folder", "does not exist"],
    ),
    "write-volume-over-input-without-overwrite": (
        lambda inputs, out: write_volume(inputs / "v.tif", np.zeros((3, 4, 4)), None),
        OutputExistsError,
        ["exists", "overwrite"],
    ),
}

#: CLI cases with no Python API counterpart: argument parsing, and commands whose output rules
#: live in the CLI (no documented Python call writes their outputs).
CLI_ONLY: dict[str, str] = {
    "unknown-option": "click's parsing",
    "missing-argument": "click's parsing",
    "missing-output": "click's parsing",
    "unknown-command": "click's parsing",
    "simulate-over-input": "the simulate command writes through the CLI only",
    "evaluate-json-over-reference": "evaluate_volumes returns the scores, the CLI writes the JSON",
    "benchmark-report-holds-data": "the report folder rule is the benchmark command's",
    "phantom-labels-over-image": "the phantom command writes through the CLI only",
}


def assert_one_sentence(message: str, fragments: list[str]) -> None:
    """One line, one sentence ending with a full stop, no traceback, holding ``fragments``."""
    assert "\n" not in message and "Traceback" not in message, message
    assert message.endswith("."), f"not a sentence: {message!r}"
    assert not re.search(r"[.!?] +[A-Z]", message), f"more than one sentence: {message!r}"
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} not in {message!r}"


def assert_refused(
    call: Call, inputs: Path, out: Path, error: type[SkelEMError], fragments: list[str]
) -> str:
    """The call raises ``error`` in one sentence, writes nothing and changes no input."""
    before = _snapshot(inputs)
    with pytest.raises(SkelEMError) as caught:
        call(inputs, out)
    assert isinstance(caught.value, error), f"{type(caught.value).__name__}: {caught.value}"
    message = str(caught.value)
    assert_one_sentence(message, fragments)
    assert list(out.iterdir()) == [], f"a refused call wrote {list(out.iterdir())}"
    assert _snapshot(inputs) == before, "a refused call changed an input"
    return message


def test_every_cli_case_has_an_api_case_or_a_reason() -> None:
    covered = set(DATA_CASES) | set(FACTORS) | set(API_CASES) | set(CLI_ONLY)
    assert sorted(set(CASES) - covered) == []
    assert sorted(set(CLI_ONLY) - set(CASES)) == [], "CLI_ONLY names a case the CLI lacks"


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data_refused_by_every_entry_point(
    inputs: Path, tmp_path: Path, case: str, entry: str
) -> None:
    call = ENTRY_POINTS[entry](DATA_CASES[case])
    assert_refused(call, inputs, tmp_path, InputError, CASES[case][1])


@pytest.mark.parametrize("case", list(FACTORS))
def test_bad_factor_refused_by_restore_and_config(inputs: Path, tmp_path: Path, case: str) -> None:
    factor = FACTORS[case]
    words = ["must be a number", "'abc'"] if factor == "abc" else CASES[case][1]
    assert_refused(restore("v.tif", factor=factor), inputs, tmp_path, ConfigError, words)
    config = lambda inputs, out: build_config({"degradation": {"factor": factor}})  # noqa: E731
    assert_refused(config, inputs, tmp_path, ConfigError, words)


@pytest.mark.parametrize("case", list(API_CASES))
def test_refused_with_one_sentence_nothing_written_inputs_unchanged(
    inputs: Path, tmp_path: Path, case: str
) -> None:
    call, error, fragments = API_CASES[case]
    words = CASES[case][1] if fragments is None else fragments
    assert_refused(call, inputs, tmp_path, error, words)


def test_the_same_calls_succeed_with_good_arguments(inputs: Path, tmp_path: Path) -> None:
    """The refusals are not blanket ones: a fresh output, a good factor and the untampered model
    restore; a new model folder trains; a list of numbers is a volume."""
    restore("v.tif", factor=FACTOR)(inputs, tmp_path)
    restore("v.tif", "{out}/s.tif", model="model")(inputs, tmp_path)
    artifact = train("v.tif", "{out}/m")(inputs, tmp_path)
    assert artifact.stages == ["skeleton"]  # type: ignore[attr-defined]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "r.tif", "s.tif"]
    as_list = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    restored = restore_volume(
        Volume(as_list.tolist()), factor=2, options=RestoreOptions(method="cubic")
    )
    assert restored.shape == (5, 4, 4)
