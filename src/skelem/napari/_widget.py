"""The restoration dock widget: pick a layer, a factor and a model, restore in a worker thread.

The long work (training, restoring) runs in a napari ``thread_worker``; its progress events come
back to the GUI thread through a Qt signal and drive the progress bar. Cancel sets an event that
the run's progress callback checks (see :mod:`skelem.napari._run`): the run stops at its next
event and no layer is added. The result arrives as a new image layer whose scale is the input's
with the Z step divided by the factor, and with several samples a second layer holds the
per-voxel std (where the restored detail is uncertain).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from skelem.errors import SkelEMError
from skelem.events import ProgressEvent
from skelem.io import Volume
from skelem.napari._layers import layer_voxel_size
from skelem.napari._run import (
    METHOD_CHOICES,
    MODEL_SOURCES,
    RestoreRequest,
    RestoreResult,
    RunCancelled,
    run_request,
)

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

#: progress-bar text of each task
TASK_NAMES = {
    "train-skeleton": "training the skeleton",
    "train-refiner": "training the refiner",
    "align-refiner": "aligning the refiner",
    "train-diffusion-peer": "training the diffusion peer",
    "blocks": "restoring",
}


class _ProgressBridge(QObject):
    """Carries progress events from the worker thread to the GUI thread (queued signal)."""

    event = Signal(str, int, int)


class RestoreWidget(QWidget):
    """Dock widget: isotropic restoration of an image layer with SkelEM.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose image layers are offered and which receives the result.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self._cancel = threading.Event()
        self._bridge = _ProgressBridge()
        self._bridge.event.connect(self._on_progress)
        self._build()
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()

    # ---- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        self.layer_combo = QComboBox()
        self.layer_combo.currentTextChanged.connect(self._layer_chosen)
        self.voxel_edit = QLineEdit()
        self.voxel_edit.setPlaceholderText("z, y, x (empty: give the factor)")
        self.factor_spin = QSpinBox()
        self.factor_spin.setRange(1, 16)
        self.factor_spin.setSpecialValueText("from voxel size")
        self.profile_edit = QLineEdit("none")
        self.profile_edit.setToolTip("Slice profile: none, box[:T] or gaussian:SIGMA (training).")
        self.source_combo = QComboBox()
        for key, label in MODEL_SOURCES.items():
            self.source_combo.addItem(label, key)
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("model folder (training: empty = a new temporary one)")
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_edit)
        model_row.addWidget(browse)
        self.method_combo = QComboBox()
        self.method_combo.addItems(METHOD_CHOICES)
        self.samples_spin = QSpinBox()
        self.samples_spin.setRange(1, 64)
        self.samples_spin.setToolTip("More than 1: the mean of N seeds and a std layer.")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)

        form = QFormLayout()
        form.addRow("Image layer", self.layer_combo)
        form.addRow("Voxel size", self.voxel_edit)
        form.addRow("Factor", self.factor_spin)
        form.addRow("Slice profile", self.profile_edit)
        form.addRow("Model", self.source_combo)
        form.addRow("Model folder", model_row)
        form.addRow("Method", self.method_combo)
        form.addRow("Samples", self.samples_spin)
        form.addRow("Seed", self.seed_spin)

        self.run_button = QPushButton("Restore")
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("idle")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addStretch(1)

    # ---- state --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return self.worker is not None

    def _image_layers(self) -> list:
        from napari.layers import Image

        return [
            layer for layer in self.viewer.layers if isinstance(layer, Image) and layer.ndim == 3
        ]

    def _refresh_layers(self, *_: object) -> None:
        current = self.layer_combo.currentText()
        names = [layer.name for layer in self._image_layers()]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        self.layer_combo.blockSignals(False)
        if current in names:
            self.layer_combo.setCurrentText(current)
        elif names:
            self.layer_combo.setCurrentIndex(0)
            self._layer_chosen(names[0])

    def _layer_chosen(self, name: str) -> None:
        if not name or name not in self.viewer.layers:
            return
        voxel = layer_voxel_size(self.viewer.layers[name].scale)
        self.voxel_edit.setText(", ".join(f"{v:g}" for v in voxel) if voxel else "")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder")
        if folder:
            self.model_edit.setText(folder)

    # ---- running ------------------------------------------------------------------------------
    def request(self) -> RestoreRequest:
        """The run the widget's fields describe.

        Returns
        -------
        RestoreRequest

        Raises
        ------
        SkelEMError
            No layer, an unreadable voxel size, no factor, a bad profile (one sentence).
        """
        name = self.layer_combo.currentText()
        if not name or name not in self.viewer.layers:
            raise SkelEMError("Open or choose a 3-D image layer first.")
        layer = self.viewer.layers[name]
        data = layer.data[0] if layer.multiscale else layer.data
        voxel = self._voxel_size()
        volume = Volume(
            data=data,
            voxel_size=voxel,
            unit=_layer_unit(layer),
            source=f"napari layer {name!r}",
        )
        typed = self.factor_spin.value()
        factor = volume.anisotropy_factor(typed if typed > 1 else None)
        return RestoreRequest(
            volume=volume,
            factor=factor,
            profile=self.profile_edit.text().strip() or "none",
            model_source=self.source_combo.currentData(),
            model_dir=self.model_edit.text().strip(),
            method=self.method_combo.currentText(),
            samples=self.samples_spin.value(),
            seed=self.seed_spin.value(),
        )

    def _voxel_size(self) -> tuple[float, float, float] | None:
        text = self.voxel_edit.text().strip()
        if not text:
            return None
        try:
            values = tuple(float(v) for v in text.replace(";", ",").split(","))
        except ValueError:
            values = ()
        if len(values) != 3 or min(values) <= 0:
            raise SkelEMError(
                f"The voxel size must be three positive numbers z, y, x, not {text!r}."
            )
        return values  # type: ignore[return-value]

    def start(self) -> None:
        """Check the fields and start the run in a worker thread (no-op while one runs)."""
        if self.running:
            return
        try:
            request = self.request()
        except SkelEMError as err:
            self._report(str(err), error=True)
            return
        from napari.qt.threading import create_worker

        self._cancel = threading.Event()
        cancel = self._cancel
        bridge = self._bridge

        def work() -> RestoreResult | str | None:
            try:
                return run_request(request, _emitter(bridge), cancel)
            except RunCancelled:
                return None
            except SkelEMError as err:  # the user's to fix: its sentence, not a traceback
                return str(err)  # (a returned exception would be raised by the worker)

        source_layer = self.viewer.layers[self.layer_combo.currentText()]
        self.worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        self.worker.returned.connect(lambda result: self._finish(result, source_layer, request))
        self.worker.errored.connect(self._failed)
        self.worker.finished.connect(self._done)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setRange(0, 0)  # busy until the first event
        self.progress_bar.setFormat("starting")
        self._report(f"x{request.factor}: running…")
        self.worker.start()

    def cancel(self) -> None:
        """Stop the run at its next progress event; it adds no layer."""
        if self.running:
            self._cancel.set()
            self.cancel_button.setEnabled(False)
            self._report("cancelling…")

    def _on_progress(self, task: str, step: int, total: int) -> None:
        if self._cancel.is_set():
            return
        label = TASK_NAMES.get(task, task)
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(min(step, total))
            self.progress_bar.setFormat(f"{label}: {step}/{total}")
        else:
            self.progress_bar.setRange(0, 0)
            self.progress_bar.setFormat(label)

    def _finish(self, result: RestoreResult | str | None, source, request: RestoreRequest) -> None:
        if result is None or self._cancel.is_set():
            self._report("cancelled: no layer added")
            return
        if isinstance(result, str):
            self._report(result, error=True)
            return
        add_result_layers(self.viewer, result, source, request)
        where = f"; model in {result.model_dir}" if result.model_dir else ""
        done = f"restored with {result.method}, x{result.factor}{where}."
        self._report(" ".join([done, *result.notes]))
        if request.model_source.startswith("train") and result.model_dir:
            self.model_edit.setText(result.model_dir)  # the next run can reuse it
            self.source_combo.setCurrentIndex(list(MODEL_SOURCES).index("folder"))

    def _failed(self, err: Exception) -> None:
        # a bug, not a user error (those are returned): napari's notification shows the traceback
        log.error("restoration failed", exc_info=err)
        self.status.setText(f"restoration failed ({type(err).__name__}: {err})")

    def _done(self) -> None:
        self.worker = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0 if self._cancel.is_set() else 1)
        self.progress_bar.setFormat("cancelled" if self._cancel.is_set() else "done")

    def _report(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        if error:
            from napari.utils.notifications import show_error

            show_error(text)


def _emitter(bridge: _ProgressBridge):
    def emit(event: ProgressEvent) -> None:
        bridge.event.emit(event.task, int(event.step), int(event.total))

    return emit


def _layer_unit(layer) -> str:
    unit = (layer.metadata or {}).get("skelem_unit")
    if unit:
        return str(unit)
    units = getattr(layer, "units", None)
    if units and str(units[0]) not in ("pixel", "dimensionless", ""):
        return str(units[0])
    return "micrometer"


def add_result_layers(viewer, result: RestoreResult, source, request: RestoreRequest) -> list:
    """Add the restored volume (and its std) to ``viewer``, on the input's physical grid.

    Parameters
    ----------
    viewer : napari.Viewer
    result : RestoreResult
    source : napari.layers.Image
        The input layer (its translation, colormap and contrast are kept).
    request : RestoreRequest

    Returns
    -------
    list of napari.layers.Image
        The new layers.
    """
    z, y, x = (float(v) for v in source.scale)
    scale = (z / result.factor, y, x)
    common = {
        "scale": scale,
        "translate": tuple(source.translate),
        "units": tuple(source.units),
        "metadata": dict(result.metadata),
    }
    layers = [
        viewer.add_image(
            result.restored,
            name=f"{source.name} restored ({result.method} x{result.factor})",
            colormap=source.colormap.name,
            contrast_limits=tuple(source.contrast_limits),
            **common,
        )
    ]
    if result.std is not None:
        layers.append(
            viewer.add_image(
                result.std,
                name=f"{source.name} std ({request.samples} samples)",
                colormap="magma",
                blending="additive",
                visible=False,
                **common,
            )
        )
    return layers
