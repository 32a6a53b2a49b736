"""A headless display for the napari tests: an Xvfb server (napari's canvas needs OpenGL, which
Qt's ``offscreen`` platform lacks), started once per session; ``.ci/run`` installs Xvfb.

Outside CI, without Xvfb or napari, the tests are skipped with the reason; in CI they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the napari tests; see .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def xvfb_display():
    """``DISPLAY`` of a private Xvfb server, with Qt pointed at it (xcb platform)."""
    pytest.importorskip("napari", reason="napari is not installed (pip install 'skelem[napari]')")
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        _unavailable("Xvfb is not installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_end_with_parent,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        _unavailable("Xvfb did not start")
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "QT_QPA_PLATFORM")}
    os.environ["DISPLAY"] = f":{number}"
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    yield os.environ["DISPLAY"]
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    # The server outlives the session on purpose: Qt's application object still holds its
    # connection until the interpreter exits, and a broken X connection ends the process with
    # status 1. The kernel stops the server when this process ends (_end_with_parent).


def _end_with_parent() -> None:
    """In the Xvfb child before exec: receive SIGTERM when the test process ends (Linux)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@pytest.fixture
def viewer(xvfb_display):
    """A real ``napari.Viewer(show=False)``, closed after the test."""
    import napari

    view = napari.Viewer(show=False)
    yield view
    view.close()


@pytest.fixture
def wait_until(xvfb_display):
    """``wait_until(condition, timeout)``: process Qt events until ``condition()`` is true; the
    test fails after ``timeout`` seconds."""
    from qtpy.QtWidgets import QApplication

    def wait(condition, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"condition not met within {timeout:.0f} s")
            QApplication.processEvents()
            time.sleep(0.01)

    return wait
