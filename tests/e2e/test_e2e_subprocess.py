"""The real entry point in a fresh interpreter: exit codes, stderr, and a help that skips torch."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .cli_helpers import SUBPROCESS_ENV, assert_user_error, skelem_subprocess
from .conftest import Volumes


def test_help_is_quick_and_lists_every_command() -> None:
    start = time.perf_counter()
    result = skelem_subprocess("--help")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    for command in (
        "info",
        "phantom",
        "simulate",
        "train",
        "restore",
        "evaluate",
        "benchmark",
        "demo",
    ):
        assert f"  {command} " in result.stdout, f"{command} missing from --help"
    assert elapsed < 3.0, f"skelem --help took {elapsed:.1f} s"


def test_help_does_not_import_torch() -> None:
    script = (
        "import sys\n"
        "from skelem.cli.main import cli\n"
        "import skelem.cli.commands\n"
        "for args in (['--help'], ['train', '--help'], ['restore', '--help'],\n"
        "             ['evaluate', '--help']):\n"
        "    cli.main(args, prog_name='skelem', standalone_mode=False)\n"
        "heavy = ('torch', 'scipy', 'pydantic', 'skelem.training', 'skelem.inference')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=SUBPROCESS_ENV,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: skelem restore" in result.stdout


def test_version() -> None:
    result = skelem_subprocess("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("skelem, version ")


def test_user_errors_exit_2_from_a_real_process(volumes: Volumes, tmp_path: Path) -> None:
    assert_user_error(
        skelem_subprocess("info", volumes.bad / "flat.npy"), "(Z, Y, X) volume is needed"
    )
    assert_user_error(
        skelem_subprocess("simulate", volumes.iso, "-o", tmp_path / "s.tif", "--factor", "2.5"),
        "Non-integer anisotropy factor 2.5",
    )
    assert_user_error(
        skelem_subprocess("info", volumes.bad / "garbage.h5"), "could not be read as HDF5"
    )
    (tmp_path / "not_a_model").mkdir()
    assert_user_error(
        skelem_subprocess(
            "restore", volumes.aniso, "-o", tmp_path / "r.tif", "--model", tmp_path / "not_a_model"
        ),
        "not a SkelEM model directory",
    )
    assert_user_error(
        skelem_subprocess(
            "restore", volumes.aniso, "-o", tmp_path / "r.tif", "--method", "bicubic"
        ),
        "'bicubic' is not one of",
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "not_a_model"]
    assert list((tmp_path / "not_a_model").iterdir()) == []


def test_a_real_process_writes_a_phantom(tmp_path: Path) -> None:
    out = tmp_path / "p.npy"
    result = skelem_subprocess("phantom", "-o", out, "--shape", "8,16,16", "--kind", "lm")
    assert result.returncode == 0, result.stderr
    assert "wrote LM phantom 8x16x16" in result.stdout
    assert np.load(out).shape == (8, 16, 16)
