"""The bad-input matrix as a Markdown table: case, the one-sentence message, the exit code.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bad_input_table.py > /tmp/table.md

Runs every case of ``tests/reliability/test_bad_inputs.py`` (``CASES``) and of
``tests/reliability/test_bad_outputs.py`` (``DISK_CASES``: read-only folders and full disks,
real small tmpfs when run as root with ``mount``, else simulated) through ``skelem`` in this
process, exactly as the tests do, on the same inputs (``conftest.build_inputs``), and prints
what a user sees. Paths are shown relative to the temporary folders (``{in}``, ``{out}``...).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from click.testing import CliRunner  # noqa: E402

from reliability.conftest import build_inputs  # noqa: E402
from reliability.test_bad_inputs import CASES  # noqa: E402
from reliability.test_bad_outputs import (  # noqa: E402
    DISK_CASES,
    MOUNT,
    simulated_full_disk,
    small_file_system,
    write_tiny_config,
)
from skelem.cli.main import cli  # noqa: E402
from skelem.models.device import torch_threads  # noqa: E402


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, prog_name="skelem")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return result.exit_code, " / ".join(lines) if lines else "(nothing on stderr)"


def _row(case: str, args: tuple[str, ...], code: int, message: str, places: dict) -> str:
    shown = " ".join(args)
    for key, folder in places.items():
        message = message.replace(str(folder), "{" + key + "}")
    message = message.removeprefix("Error: ").replace("|", "\\|")
    return f"| {case} | `{shown}` | {message} | {code} |"


def main() -> None:
    rows = ["| case | arguments | message (stderr, after `Error: `) | exit |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp, torch_threads(1):
        root = Path(tmp)
        inputs = build_inputs(Path(tempfile.mkdtemp(dir=root, prefix="in-")))
        write_tiny_config(inputs)
        for case, (args, _) in CASES.items():
            out = Path(tempfile.mkdtemp(dir=root, prefix="out-"))
            places = {"in": inputs, "out": out}
            code, message = _run([a.format(**places) for a in args])
            rows.append(_row(case, args, code, message, places))
        for case, (args, _, disk) in DISK_CASES.items():
            folder = Path(tempfile.mkdtemp(dir=root, prefix="disk-")) / "d"
            kind = "readonly" if disk.get("read_only") else "full"
            places = {"in": inputs, kind: folder}
            with contextlib.ExitStack() as stack:
                size, read_only = disk.get("size", 16), disk.get("read_only", False)
                stack.enter_context(small_file_system(folder, size, read_only))
                if not MOUNT and not read_only:
                    import pytest

                    patch = stack.enter_context(pytest.MonkeyPatch.context())
                    stack.enter_context(simulated_full_disk(patch, size))
                code, message = _run([a.format(**places) for a in args])
            label = f"{case} ({'tmpfs' if MOUNT else 'simulated'}"
            label += f" {size} kB)" if not read_only else ")"
            rows.append(_row(label, args, code, message, places))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
