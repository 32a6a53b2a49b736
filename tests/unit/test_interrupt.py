"""Ctrl-C in a ``skelem`` command: one sentence and exit 130 at once, even while a network call
runs in a thread that cannot be stopped (an in-process Dask worker restoring a one-block plan)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

SCRIPT = textwrap.dedent(
    """
    import threading, time
    from skelem.cli.common import handle_errors

    def block():  # stands for a torch call in the in-process worker's thread
        time.sleep(60)

    @handle_errors
    def command():
        threading.Thread(target=block).start()  # not a daemon, like Dask's executor thread
        raise KeyboardInterrupt

    command()
    """
)


def test_an_interrupted_command_exits_130_without_waiting_for_running_threads() -> None:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 130, done.stderr
    assert time.monotonic() - start < 30  # the thread would hold the exit for 60 s
    assert done.stderr.strip() == (
        "Interrupted; run the same command again to continue where it stopped."
    )
