"""Restore in rounds: fresh ``skelem`` processes, each restoring some blocks of a streamed
output."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

from skelem.cli.common import EXIT_MORE_BLOCKS

#: Environment variable through which a round's process learns the command line of the
#: ``skelem`` command that started the rounds (JSON list), to record it in the output.
OUTER_COMMAND_ENV = "SKELEM_OUTER_COMMAND_LINE"


def command_line() -> list[str]:
    """The command line of this ``skelem`` run, as recorded in the outputs' metadata.

    ``sys.argv``; in a round's process (:func:`run_in_rounds`), the command line of the command
    that started the rounds, not the round's own (which adds ``--max-blocks``).

    Returns
    -------
    list of str
    """
    outer = os.environ.get(OUTER_COMMAND_ENV)
    if outer:
        try:
            recorded = json.loads(outer)
        except ValueError:
            recorded = None
        if isinstance(recorded, list) and all(isinstance(arg, str) for arg in recorded):
            return recorded
    return list(sys.argv)


def run_in_rounds(argv: list[str], blocks: int) -> int:
    """Run ``skelem ARGV --max-blocks BLOCKS`` in fresh processes until one finishes; its exit code.

    Each round restores up to ``blocks`` blocks of a streamed output and exits; the next resumes
    from the progress file. The memory a process gathers from block to block (native allocator
    growth, ~0.8 MiB per block measured here) is returned to the system at every round.

    Parameters
    ----------
    argv : list of str
        The arguments of the ``skelem`` command line (without the program).
    blocks : int
        Blocks per round.

    Returns
    -------
    int
        The exit code of the last round (130 when interrupted).
    """
    cmd = [sys.executable, "-m", "skelem.cli.main", *argv, "--max-blocks", str(blocks)]
    watch = functools.partial(_die_with_parent, os.getpid()) if sys.platform == "linux" else None
    env = {**os.environ, OUTER_COMMAND_ENV: json.dumps(command_line())}
    while True:
        child = subprocess.Popen(cmd, preexec_fn=watch, env=env)
        try:
            code = child.wait()
        except KeyboardInterrupt:  # the child got the same signal: let it stop cleanly and report
            child.wait()
            return 130
        if code != EXIT_MORE_BLOCKS:
            return code if code >= 0 else 128 - code


def _die_with_parent(parent: int) -> None:
    """In a round's process (Linux): be killed when the parent dies, so that a killed ``skelem
    restore`` never leaves a round writing to the store while the next run resumes it."""
    import ctypes

    try:
        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
