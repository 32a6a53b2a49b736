"""Running ``skelem`` in-process (click's CliRunner) or as a real subprocess; checking the result.

Every user error must reach the terminal as exactly one ``Error: <one sentence>`` line on stderr,
with exit code 2 and no traceback; these helpers check that contract in one place.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys

from click.testing import CliRunner, Result

import skelem.cli.commands  # noqa: F401  (registers train/restore/evaluate/... on the group)
from skelem.cli.main import cli
from skelem.models.device import torch_threads

#: Subprocesses run torch on one thread: the machine is shared, and two OpenMP threads spinning
#: against a busy neighbour make these tiny networks 10-50x slower.
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: Lines click itself prints around a usage error (bad option value); anything else is noise.
_CLICK_USAGE_LINES = re.compile(r"^(Usage: |Try '|$)")


def single_thread() -> contextlib.AbstractContextManager[None]:
    """Torch on one thread inside the block (see :func:`skelem.models.device.torch_threads`)."""
    return torch_threads(1)


def skelem(*args: object) -> Result:
    """Run ``skelem ARGS`` in this process and return click's result (stdout and stderr apart)."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def skelem_command(*args: object) -> list[str]:
    """The argv of ``skelem ARGS`` run through the module's real entry point ``main()``."""
    return [sys.executable, "-m", "skelem.cli.main", *(str(a) for a in args)]


def skelem_subprocess(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``skelem ARGS`` as a separate Python process."""
    return subprocess.run(
        skelem_command(*args), capture_output=True, text=True, timeout=timeout, env=SUBPROCESS_ENV
    )


def assert_success(result: Result) -> str:
    """Check a CliRunner run exited 0 and return its stdout."""
    assert result.exit_code == 0, (
        f"exit code {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}\n"
        f"exception: {result.exception!r}"
    )
    return result.stdout


def assert_user_error(result: Result | subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Check the error contract (exit 2, one ``Error:`` sentence, no traceback); return the message.

    ``fragments`` must all appear in the message (case-insensitive).
    """
    if isinstance(result, Result):
        code, stdout, stderr = result.exit_code, result.stdout, result.stderr
        # An exception other than SystemExit escaped the command: CliRunner swallowed a traceback.
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"uncaught {result.exception!r}; stderr: {stderr}"
        )
    else:
        code, stdout, stderr = result.returncode, result.stdout, result.stderr
    assert "Traceback" not in stdout + stderr, stderr
    assert code == 2, f"exit code {code}\nstdout: {stdout}\nstderr: {stderr}"
    assert stdout.strip() == "", f"a failed command printed to stdout: {stdout}"
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, f"expected one 'Error:' line, got:\n{stderr}"
    others = [
        line
        for line in stderr.splitlines()
        if line not in errors and not _CLICK_USAGE_LINES.match(line)
    ]
    assert not others, f"stderr holds more than the error:\n{stderr}"
    message = errors[0].removeprefix("Error: ")
    assert message.endswith("."), f"not a sentence: {message!r}"
    assert not re.search(r"[.!?] +[A-Z]", message), f"more than one sentence: {message!r}"
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} not in {message!r}"
    return message
