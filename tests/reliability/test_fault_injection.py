"""Fault injection, short version: SIGKILL ``skelem train`` and ``skelem restore`` mid-run, resume
with the same command, and get what an uninterrupted run gives, bit for bit.

The uninterrupted references run in this process (no start-up cost); the killed and resumed
commands are real processes (``python -m skelem.cli.main``) in their own process group, killed
with SIGKILL after a trigger (the model's manifest appears, a temporary ``.partial`` file is being
written, the streamed store starts) and a random delay. After every kill, no checkpoint,
manifest, weights file or output under a final name may be incomplete
(:func:`faults.check_no_false_complete`). ``benchmarks/fault_injection.py`` runs 20 and more.
"""

from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from skelem.cli.main import cli
from skelem.models.device import torch_threads

from . import faults

RESTORE = faults.RESTORE_ARGS


def _in_process(args: list[str], cwd: Path) -> float:
    """Run ``skelem ARGS`` here with ``cwd`` as working folder; its wall time."""
    start = time.perf_counter()
    with contextlib.chdir(cwd), torch_threads(1):  # as the killed commands (tests/conftest: 2)
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, f"{result.stderr}\n{result.exception!r}"
    return time.perf_counter() - start


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The inputs, the uninterrupted tiny training (every stage) and its time in seconds."""
    root = tmp_path_factory.mktemp("faults")
    faults.make_inputs(root, restore_shape=(9, 32, 32))
    return root, _in_process(faults.TRAIN_ARGS, root)


def test_training_killed_again_and_again_resumes_bit_identical(
    reference: tuple[Path, float], tmp_path: Path
) -> None:
    root, _ = reference
    faults.link_inputs(root, tmp_path, ("acq.tif", "tiny.json"))
    model = tmp_path / "model"
    rng = random.Random(15)
    writing = faults.writing_partial(model, model / "checkpoints")
    triggers = [  # each resumed run gets at least as far as its first write
        ("skeleton", faults.exists(model / "checkpoints" / "skeleton.pt"), rng.uniform(0, 0.5)),
        # the alignment's first checkpoint comes before the peer's stage: a kill that cannot
        # miss (a write can start and end between two polls on a fast machine, and a run whose
        # kill missed trains to the end, leaving nothing to kill)
        ("alignment", faults.exists(model / "checkpoints" / "alignment.pt"), rng.uniform(0, 0.01)),
        ("writing", writing, rng.uniform(0, 0.01)),
        ("writing", writing, rng.uniform(0, 0.01)),
    ]
    killed = 0
    for name, trigger, delay in triggers:
        kill = faults.run_and_kill(faults.TRAIN_ARGS, tmp_path, trigger, delay, name)
        killed += kill.killed
        assert faults.check_no_false_complete(tmp_path) == [], faults.model_state(model)
    assert killed >= 2, "the kills came too late: the training finished first"
    faults.run_to_end(faults.TRAIN_ARGS, tmp_path)
    assert faults.compare_models(root / "model", model) == []
    leftovers = [p.name for p in model.rglob("*") if faults.PARTIAL in p.name]
    assert leftovers == [], "the killed writes' temporary files were not cleaned up"


@pytest.mark.parametrize("output", ["r.ome.zarr", "r.tif"])
def test_restore_killed_resumes_bit_identical(
    reference: tuple[Path, float], tmp_path: Path, output: str
) -> None:
    """OME-Zarr resumes its finished blocks; a TIFF is written whole or not at all."""
    root, _ = reference
    # the stream with cubic interpolation (the runner is what is tested; the benchmark streams
    # the sampler), the TIFF with the trained tiny model's sampler
    args = [*RESTORE, "-o", output] + (["--method", "cubic"] if output.endswith(".zarr") else [])
    expected = root / output
    if not expected.exists():
        _in_process(args, root)
    faults.link_inputs(root, tmp_path, ("big.tif", "model"))
    rng = random.Random(len(output))
    if output.endswith(".zarr"):
        # kill once a random number of chunk files are written (under whatever temporary name)
        plan = [("stream", faults.files_at_least(tmp_path, rng.randint(3, 8), "r.ome.zarr"), 0)]
    else:
        plan = [("writing", faults.writing_partial(tmp_path), rng.uniform(0, 0.005))]
    for name, trigger, delay in plan:
        faults.run_and_kill(args, tmp_path, trigger, delay, name)
        assert faults.check_no_false_complete(tmp_path, root) == []
    if not (tmp_path / output).exists():  # killed: the same command again
        faults.run_to_end(args, tmp_path)
    assert faults.compare_outputs(expected, tmp_path / output) == []
