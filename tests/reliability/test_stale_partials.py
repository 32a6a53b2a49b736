"""A write killed midway leaves a hidden ``.partial-<pid>`` sibling; the next atomic write of the
same file removes those of processes that are gone, and keeps those of running ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from skelem.atomic import write_text_atomic


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_next_write_removes_partials_of_dead_processes_only(tmp_path: Path) -> None:
    target = tmp_path / "skelem-model.json"
    dead = tmp_path / f".{target.name}.partial-{_dead_pid()}"
    alive = tmp_path / f".{target.name}.partial-{os.getppid()}"  # the parent runs
    other = tmp_path / f".other.json.partial-{_dead_pid()}"
    for leftover in (dead, alive, other):
        leftover.write_bytes(b"half a file")
    write_text_atomic(target, "{}")
    assert target.read_text() == "{}"
    assert not dead.exists()
    assert alive.exists() and other.exists()
