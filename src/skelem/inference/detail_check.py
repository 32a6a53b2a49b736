"""Does a pretrained model's sampled detail suit this volume? A check on its own lateral slices.

SkelEM's refiner adds the texture it learned from its training data. A pretrained FIB-SEM model
restoring another kind of volume (light microscopy, say) adds FIB-SEM texture that volume does not
have: invented structure, at a cost in fidelity (``benchmarks/RESULTS.md``, "Zero-shot across
modalities"). Without ground truth along Z that cannot be measured there, but the volume's
lateral (XY) slices can stand in: a window of an acquired slice, degraded along one lateral axis
by the factor and restored as an axial slice at detail 0 (the deterministic output) and at the
model's detail, shows how much detail the refiner draws for what the deterministic output misses
(:func:`lateral_detail`). On data like its training data that share is what it was there; on
other data the refiner draws far more (its texture, not the volume's).

A model records the share on its training data in its manifest (``provenance``,
:data:`REFERENCE_KEY`); :func:`check_detail` compares a volume's with it, and a volume above
:data:`TOLERANCE` times the reference is better restored at detail 0. For the pretrained models
the judge is the pretrained x4 model (:data:`JUDGE_FACTOR`) whatever the restore's factor: they
share their training data, and at x4 the two kinds of data separate best
(``benchmarks/run_detail_check.py``). ``skelem restore`` without ``--model`` and napari's
pretrained model source run the check (:func:`check_pretrained_detail`) unless a detail is asked
for.

A model trained on a volume (``skelem train``, napari's training sources) records its own
reference on that volume's lateral slices when its refiner is trained
(:func:`record_reference`); ``skelem restore --model`` and napari's model-folder source then judge
a volume with the model itself (:func:`check_model_detail`). On the training volume the windows
are the recorded ones (same :func:`windows_fingerprint`): the check passes without running the
networks.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from skelem.config.restore import RestoreOptions
from skelem.data.interpolation import upsample
from skelem.data.normalize import PercentileNormalizer
from skelem.inference.methods import SkelEM, build_method, default_method
from skelem.io import Volume
from skelem.models.artifact import ModelArtifact, load_artifact

log = logging.getLogger(__name__)

#: manifest ``provenance`` key: the judge's :class:`LateralDetail` on its training data
REFERENCE_KEY = "lateral_detail"
#: a volume fails the check when its energy ratio is above this multiple of the reference
TOLERANCE = 1.25
#: the factor of the pretrained model that judges (see the module docstring)
JUDGE_FACTOR = 4
#: acquired slices sampled (evenly along Z), each giving a window along Y and one along X
PLANE_SLICES = 8
#: largest window side (pixels)
WINDOW = 128


@dataclass(frozen=True)
class DetailCheck:
    """The outcome of :func:`check_detail`.

    Parameters
    ----------
    measured : LateralDetail
        The judge's detail on this volume's lateral windows.
    reference : float
        The judge's energy ratio on its training data.
    windows : int
        Lateral windows measured.
    pretrained : bool
        The judge is a pretrained model (reference: its FIB-SEM training data); else a model
        trained on a volume (reference: that volume).
    training_volume : bool
        The volume is the one the reference was measured on (same windows; nothing measured).
    """

    measured: LateralDetail
    reference: float
    windows: int
    pretrained: bool = True
    training_volume: bool = False

    @property
    def ratio(self) -> float:
        """The volume's energy ratio over the training data's."""
        return self.measured.energy_ratio / max(self.reference, 1e-12)

    @property
    def passed(self) -> bool:
        """The volume looks like the model's training data (ratio at most :data:`TOLERANCE`)."""
        return self.ratio <= TOLERANCE

    def message(self) -> str:
        """One sentence for the user: what was measured and what the restore does about it."""
        if self.training_volume:
            return (
                "detail check passed: this is the volume the model was trained on (its lateral "
                "windows are the recorded ones)."
            )
        refiner, learned = (
            ("the pretrained refiner", "the FIB-SEM it learned from")
            if self.pretrained
            else ("the model's refiner", "the volume it was trained on")
        )
        measured = (
            f"on this volume's own lateral slices {refiner} draws {self.ratio:.1f} times as "
            f"much detail, for what the deterministic output misses, as on {learned} (the "
            f"detail costs {self.measured.cost_db:.2f} dB there)"
        )
        if self.passed:
            return f"detail check passed: {measured}."
        train = "your volume" if self.pretrained else "this volume"
        return (
            f"detail check failed: {measured}, so this volume does not look like that data and "
            "the detail would be invented; restoring at --detail 0 (the deterministic output: "
            f"skeleton and measured residual). Train a model on {train} (skelem train) for "
            "detail, or pass --detail to override."
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly values (for outputs' metadata and summaries)."""
        return {
            "energy_ratio": round(self.measured.energy_ratio, 4),
            "cost_db": round(self.measured.cost_db, 4),
            "reference": round(self.reference, 4),
            "ratio": round(self.ratio, 4),
            "tolerance": TOLERANCE,
            "windows": self.windows,
            "passed": self.passed,
        }


def lateral_windows(
    data: Any, factor: int, slices: int = PLANE_SLICES, size: int = WINDOW
) -> list[np.ndarray]:
    """Windows of acquired XY slices whose rows play Z: ``factor * m + 1`` rows by at most
    ``size`` columns, from ``slices`` slices evenly spaced along Z, one window with its rows
    along Y and one along X from each (central in the slice).

    Parameters
    ----------
    data : array-like
        The acquired volume ``(Z, Y, X)`` (numpy, zarr, h5py...; only the windows are read).
    factor : int
        Anisotropy factor.
    slices : int
        Acquired slices to read.
    size : int
        Largest window side.

    Returns
    -------
    list of numpy.ndarray
        float32 ``(rows, columns)`` windows, rows first; empty when a slice is smaller than
        ``2 * factor + 1`` pixels along Y and X.
    """
    nz, ny, nx = data.shape
    windows = []
    for k in np.unique(np.linspace(0, nz - 1, min(slices, nz)).round().astype(int)):
        for rows_along_x in (False, True):
            rows_along, cols_along = (nx, ny) if rows_along_x else (ny, nx)
            intervals = (min(rows_along, size) - 1) // factor
            if intervals < 2:
                continue
            rows, cols = factor * intervals + 1, min(cols_along, size)
            r0, c0 = (rows_along - rows) // 2, (cols_along - cols) // 2
            if rows_along_x:
                window = np.asarray(data[int(k), c0 : c0 + cols, r0 : r0 + rows]).T
            else:
                window = np.asarray(data[int(k), r0 : r0 + rows, c0 : c0 + cols])
            windows.append(np.ascontiguousarray(window, dtype=np.float32))
    return windows


@dataclass(frozen=True)
class LateralDetail:
    """What SkelEM's sampled detail does on lateral windows (:func:`lateral_detail`).

    Parameters
    ----------
    energy_ratio : float
        Energy of the sampled detail (output at the model's detail minus output at detail 0)
        over the energy of what the detail-0 output misses (the window minus that output):
        how much texture the refiner draws for the structure there is to draw.
    cost_db : float
        ``10 log10`` of the mean squared error at the model's detail over that at detail 0, dB.
    """

    energy_ratio: float
    cost_db: float


def lateral_detail(
    artifact: ModelArtifact,
    windows: list[np.ndarray],
    normalizer: PercentileNormalizer,
    options: RestoreOptions | None = None,
) -> LateralDetail:
    """What SkelEM's sampled detail does on lateral windows.

    Each window is normalised, degraded along its rows (every ``factor``-th row kept, the
    first and last among them), brought back by cubic interpolation and restored as one axial
    slice by SkelEM at detail 0 and at ``options``' detail (the model's by default); both are
    compared with the window itself.

    Parameters
    ----------
    artifact : ModelArtifact
        A model with a refiner.
    windows : list of numpy.ndarray
        From :func:`lateral_windows` (rows ``factor * m + 1``).
    normalizer : PercentileNormalizer
        The normalisation the restore uses.
    options : RestoreOptions, optional
        Sampling options (detail, slow modes, steps...); the model's defaults otherwise.

    Returns
    -------
    LateralDetail
    """
    factor = artifact.factor
    options = options or RestoreOptions()
    settings = options.model_dump(exclude={"method", "detail", "planes", "samples"})
    engine = build_method(
        artifact, factor, RestoreOptions(method="skelem", detail=options.detail, **settings)
    ).engine
    engines = (replace(engine, detail=0.0), engine)  # the same networks, loaded once
    missed, detail_error, drawn = 0.0, 0.0, 0.0
    for index, window in enumerate(windows):
        truth = normalizer.normalize(window).astype(np.float64)
        interp = upsample(truth[::factor], factor, axis=0, method="cubic").astype(np.float32)
        plain, detailed = (
            engine.restore(interp[None], 0, factor, "xz", np.array([index]), 0, 0)[0].astype(
                np.float64
            )
            for engine in engines
        )
        missed += float(np.sum((truth - plain) ** 2))
        detail_error += float(np.sum((truth - detailed) ** 2))
        drawn += float(np.sum((detailed - plain) ** 2))
    missed = max(missed, 1e-30)
    return LateralDetail(drawn / missed, 10 * math.log10(max(detail_error, 1e-30) / missed))


def windows_fingerprint(windows: list[np.ndarray]) -> str:
    """SHA-256 of the windows' shapes and values: equal fingerprints, equal measures.

    Parameters
    ----------
    windows : list of numpy.ndarray
        From :func:`lateral_windows`.

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256()
    for window in windows:
        digest.update(repr(window.shape).encode())
        digest.update(np.ascontiguousarray(window, dtype=np.float32).tobytes())
    return digest.hexdigest()


def measure_lateral_detail(
    judge: ModelArtifact, volume: Volume, windows: list[np.ndarray] | None = None
) -> tuple[LateralDetail, int]:
    """:func:`lateral_detail` of ``judge`` at its own defaults on ``volume``'s lateral windows,
    normalised by the volume's own percentiles (as the references are measured).

    Parameters
    ----------
    judge : ModelArtifact
    volume : Volume
    windows : list of numpy.ndarray, optional
        ``lateral_windows(volume.data, judge.factor)`` when already read.

    Returns
    -------
    tuple
        The :class:`LateralDetail` and the number of windows (0 when the slices are too small
        or a window holds NaN or infinite values; the detail is then nan).
    """
    if windows is None:
        windows = lateral_windows(volume.data, judge.factor)
    if not windows or not all(np.isfinite(w).all() for w in windows):
        # too small, or NaN/Inf that the restore's own validation will report
        return LateralDetail(float("nan"), float("nan")), 0
    normalizer = PercentileNormalizer.fit(volume.data, percentiles=judge.config.percentiles)
    return lateral_detail(judge, windows, normalizer, RestoreOptions(normalize="input")), len(
        windows
    )


def check_detail(
    volume: Volume,
    artifact: ModelArtifact,
    options: RestoreOptions,
    judge: ModelArtifact | None = None,
) -> DetailCheck | None:
    """Compare the detail ``judge`` draws on ``volume``'s lateral slices with its training data.

    Parameters
    ----------
    volume : Volume
        The anisotropic input.
    artifact : ModelArtifact
        The model that will restore it.
    options : RestoreOptions
        The restore options.
    judge : ModelArtifact, optional
        The model whose detail is measured (with its recorded reference); ``artifact`` itself
        by default.

    Returns
    -------
    DetailCheck or None
        None when there is nothing to check: the method is not SkelEM, a detail was asked for
        (``options.detail`` set), the sampling is joint (``fuse="steps"``, which keeps all the
        detail), the model's detail is 0, the judge records no reference, or the volume's
        slices are too small for a window or hold non-finite values there (the restore
        refuses those).
    """
    judge = judge or artifact
    method = options.method or default_method(artifact)
    reference = judge.provenance.get(REFERENCE_KEY)
    joint = options.planes == "both" and options.fuse == "steps"  # keeps all its detail
    if method != SkelEM.name or options.detail is not None or reference is None or joint:
        return None
    if artifact.config.diffusion.detail <= 0:
        return None
    windows = lateral_windows(volume.data, judge.factor)
    pretrained = reference.get("fingerprint") is None  # trained models record their windows'
    same = (
        not pretrained
        and bool(windows)
        and windows_fingerprint(windows) == reference["fingerprint"]
    )
    if same:
        # the volume the reference was measured on: the same measure, without the networks
        measured = LateralDetail(float(reference["energy_ratio"]), float(reference["cost_db"]))
        count = len(windows)
    else:
        measured, count = measure_lateral_detail(judge, volume, windows)
    if not count:
        return None
    check = DetailCheck(
        measured, float(reference["energy_ratio"]), count, pretrained, training_volume=same
    )
    log.info("detail check: %s", check.as_dict())
    return check


def record_reference(artifact: ModelArtifact, volume: Volume) -> dict[str, Any] | None:
    """Measure a trained model's detail on its training volume and record it as the model's
    reference (``provenance``, :data:`REFERENCE_KEY`; the manifest is saved).

    Done once per set of trained stages: a reference recorded for the model's current stages
    is kept.

    Parameters
    ----------
    artifact : ModelArtifact
        The model just trained on ``volume``.
    volume : Volume
        Its training volume.

    Returns
    -------
    dict or None
        The reference; None when the model has no refiner, the volume's slices are too small
        for a window, or the measurement failed (logged as a warning); nothing is recorded then.
    """
    if "refiner" not in artifact.stages:
        return None
    try:
        return _record_reference(artifact, volume)
    except Exception as err:  # noqa: BLE001 - never lose a finished training to this
        log.warning("could not record the detail check's reference (%s): %s", REFERENCE_KEY, err)
        return None


def _record_reference(artifact: ModelArtifact, volume: Volume) -> dict[str, Any] | None:
    stages = sorted(artifact.stages)
    recorded = artifact.provenance.get(REFERENCE_KEY)
    if recorded is not None and recorded.get("stages") == stages:
        return recorded
    windows = lateral_windows(volume.data, artifact.factor)
    measured, count = measure_lateral_detail(artifact, volume, windows)
    if not count:
        artifact.provenance.pop(REFERENCE_KEY, None)
        artifact.save_manifest()
        return None
    reference = {
        "energy_ratio": measured.energy_ratio,
        "cost_db": measured.cost_db,
        "windows": count,
        "fingerprint": windows_fingerprint(windows),
        "stages": stages,
        "measured_on": f"{volume.source} (the training volume)",
    }
    artifact.provenance[REFERENCE_KEY] = reference
    artifact.save_manifest()
    log.info("detail reference on the training volume: %s", reference)
    return reference


def check_pretrained_detail(
    volume: Volume, artifact: ModelArtifact, options: RestoreOptions
) -> DetailCheck | None:
    """:func:`check_detail` for a pretrained model, judged by the pretrained x4 model when it is
    there (else by ``artifact`` itself); on failure ``options.detail`` becomes 0.

    Parameters
    ----------
    volume : Volume
    artifact : ModelArtifact
        The pretrained model that will restore ``volume``.
    options : RestoreOptions
        The restore options (changed in place when the check fails).

    Returns
    -------
    DetailCheck or None
        As :func:`check_detail`.
    """
    from skelem.models.pretrained import pretrained_factors, pretrained_model_dir

    judge = None
    if artifact.factor != JUDGE_FACTOR and JUDGE_FACTOR in pretrained_factors():
        judge = load_artifact(pretrained_model_dir(JUDGE_FACTOR))
    return _apply(check_detail(volume, artifact, options, judge), options)


def check_model_detail(
    volume: Volume, artifact: ModelArtifact, options: RestoreOptions
) -> DetailCheck | None:
    """:func:`check_detail` for a model trained on a volume, judged by itself against the
    reference it recorded there (:func:`record_reference`); on failure ``options.detail``
    becomes 0. A model without a reference (trained before references were recorded, or
    without a refiner) is not checked.

    Parameters
    ----------
    volume : Volume
    artifact : ModelArtifact
        The model that will restore ``volume``.
    options : RestoreOptions
        The restore options (changed in place when the check fails).

    Returns
    -------
    DetailCheck or None
        As :func:`check_detail`.
    """
    return _apply(check_detail(volume, artifact, options), options)


def _apply(check: DetailCheck | None, options: RestoreOptions) -> DetailCheck | None:
    if check is not None and not check.passed:
        options.detail = 0.0
    return check
