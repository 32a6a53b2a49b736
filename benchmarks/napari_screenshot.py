"""Screenshot of the napari widget with a restored volume: ``docs/napari_widget.png``.

Opens SkelEM's sample (the FIB-SEM crop with every 4th slice kept) in a real napari window under
a private Xvfb server, docks the "Isotropic restoration" widget, restores the layer with the
pretrained x4 model (SkelEM, 2 sampling steps) by clicking Restore, and saves the window: the
acquired stack above the restored volume in an XZ cross-section, the widget on the
right. Prints the restore seconds.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/napari_screenshot.py [-o docs/napari_widget.png]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def start_xvfb() -> subprocess.Popen:
    """A private Xvfb server (ends with this process); sets ``DISPLAY`` and Qt's platform."""
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        [
            shutil.which("Xvfb") or "Xvfb",
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            "1600x1000x24",
            "-nolisten",
            "tcp",
        ],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: ctypes.CDLL(None).prctl(1, signal.SIGTERM),
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        os.environ["DISPLAY"] = ":" + pipe.readline().strip()
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(REPO / "docs" / "napari_widget.png"))
    parser.add_argument("--method", default="skelem")
    args = parser.parse_args()
    start_xvfb()

    from qtpy.QtWidgets import QApplication

    import napari

    viewer = napari.Viewer(title="SkelEM in napari")
    viewer.window.resize(1500, 900)
    [stack] = viewer.open_sample("skelem", "fibsem_x4")
    _, widget = viewer.window.add_plugin_dock_widget("skelem", "Isotropic restoration")
    widget.method_combo.setCurrentText(args.method)
    start = time.perf_counter()
    widget.run_button.click()
    while widget.running:
        QApplication.processEvents()
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    restored = viewer.layers[-1]
    if restored is stack:
        raise SystemExit(f"no restored layer: {widget.status.text()}")
    print(
        f"{restored.name}: shape {restored.data.shape}, scale {tuple(restored.scale)}, "
        f"{seconds:.1f} s ({widget.status.text()})"
    )

    viewer.dims.order = (1, 0, 2)  # rows Z, columns X: an XZ cross-section
    viewer.dims.set_point(1, stack.scale[1] * stack.data.shape[1] / 2)
    viewer.grid.enabled = True
    viewer.grid.shape = (2, 1)  # stacked: each panel as wide as the canvas
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(output), canvas_only=False, flash=False)
    print(f"saved {output}")
    viewer.close()


if __name__ == "__main__":
    main()
