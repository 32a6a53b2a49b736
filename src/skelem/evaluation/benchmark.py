"""``skelem benchmark`` and ``skelem demo``: every method side by side on data with a reference.

For each isotropic volume and factor: simulate the anisotropic acquisition (keep every s-th slice),
train SkelEM (skeleton, refiner, alignment) and the pure-diffusion peer on the *anisotropic input
only*, restore with every method, evaluate against the isotropic original, and write
``report.md``, ``results.json`` and pictures. A paired entry replaces the simulation with a real
anisotropic acquisition and a co-registered isotropic reference.

One case (a dataset at one factor, :class:`Case`) runs in four steps: :func:`train_case`,
:func:`restore_timed` per method, :func:`score_restoration` (plus :func:`crossplane_disagreement`
and the segmentation scores), and :func:`case_figures`.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from skelem.atomic import write_text_atomic
from skelem.config.models import ExperimentConfig, build_config, sampling_defaults
from skelem.data.degradation import degrade
from skelem.data.interpolation import METHODS as INTERPOLATION_METHODS
from skelem.errors import ConfigError, InputError, OutputExistsError
from skelem.evaluation.methods import MethodSpec, benchmark_methods
from skelem.events import ProgressCallback, ProgressEvent, no_progress
from skelem.grid import restored_length
from skelem.inference.restore import restore_volume
from skelem.io import Volume, open_volume
from skelem.metrics import (
    crop_border,
    evaluate_arrays,
    pass_disagreement,
    reference_data_range,
    reference_free_resolution,
    segmentation_scores,
    stripe_excess,
    stripe_index,
)
from skelem.training.pipeline import STAGES, train_model

if TYPE_CHECKING:  # pragma: no cover
    from skelem.evaluation.membrane import MembranePredictor
    from skelem.models.artifact import ModelArtifact

log = logging.getLogger(__name__)

#: Voxels left out at the lateral borders (and at every border for the full-reference scores).
EVAL_BORDER = 8
#: The headline methods: drawn in the orthoviews and Z spectra, quoted in the summary (the
#: pretrained rows where the run asks for them).
HEADLINE_METHODS = ("cubic", "skeleton", "diffusion-50", "skelem", "skeleton-pretrained",
                    "skelem-pretrained")


#: The methods whose restore seconds are the fastest of ``Budget.timing_repeats`` runs (the
#: headline speed ratio); every other method is timed once (the 50-step peer would triple the
#: demo's time for a ratio that is large either way).
TIMED_METHODS = ("skeleton", "skelem", "skeleton-pretrained", "skelem-pretrained")


@dataclass
class Budget:
    """Training budgets and network sizes of a benchmark run."""

    skeleton_iterations: int = 1500
    refiner_iterations: int = 1500
    alignment_iterations: int = 150
    patch_size: int = 64
    batch_size: int = 8
    membrane_iterations: int = 600
    #: the skeleton's learning rate (None: the default configuration's)
    skeleton_learning_rate: float | None = None
    eval_lateral: int | None = 96  # evaluate on a central lateral crop of this size (None: all)
    step_sweep: tuple[int, ...] = (1, 5)
    t0_sweep: tuple[int, ...] = (200,)
    knob_sweep: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)  # --detail settings
    ablations: bool = True
    # restore seconds: the fastest of this many runs for the learned headline methods (skeleton,
    # SkelEM; not ablations, not runs longer than timing_repeat_below seconds): single CPU timings
    # of a few seconds vary by +-20% on a shared machine
    timing_repeats: int = 3
    timing_repeat_below: float = 60.0

    @classmethod
    def quick(cls) -> Budget:
        """The budget of ``--quick`` and of ``skelem demo`` (minutes on a 2-core CPU).

        Returns
        -------
        Budget
        """
        # 2e-3 for the skeleton: a fifth of the default budget learns less at the default 1e-3
        # (demo: skeleton 30.04 vs 30.21 dB, benchmarks/RESULTS.md), and 300 iterations end
        # before the collapse that 2e-3 risks over 1,500
        return cls(skeleton_iterations=300, refiner_iterations=300, alignment_iterations=30,
                   skeleton_learning_rate=2e-3,
                   patch_size=64, batch_size=8, membrane_iterations=200, eval_lateral=96,
                   step_sweep=(1,), t0_sweep=(200,), knob_sweep=(0.0, 1.0), ablations=True)

    def config(self, factor: int, profile: dict | None = None) -> ExperimentConfig:
        """The experiment configuration that trains a case at ``factor`` with this budget.

        Parameters
        ----------
        factor : int
            Anisotropy factor ``s``.
        profile : dict, optional
            Extra degradation settings (slice profile, thickness, sigma).

        Returns
        -------
        ExperimentConfig
        """
        train = {"patch_size": self.patch_size, "batch_size": self.batch_size}
        skeleton = {**train, "iterations": self.skeleton_iterations, "checkpoint_every": 100}
        if self.skeleton_learning_rate is not None:
            skeleton["learning_rate"] = self.skeleton_learning_rate
        return build_config({
            "degradation": {"factor": factor, **(profile or {})},
            "diffusion": sampling_defaults(factor),
            "skeleton_training": skeleton,
            "refiner_training": {**train, "iterations": self.refiner_iterations,
                                 "learning_rate": 1e-3, "checkpoint_every": 100},
            "alignment_training": {"iterations": self.alignment_iterations, "batch_size": 4,
                                   "patch_size": min(64, self.patch_size),
                                   "learning_rate": 2e-4, "checkpoint_every": 20},
        })


@dataclass
class Dataset:
    """An isotropic volume to benchmark on (with optional labels), or a paired acquisition."""

    name: str
    reference: Path
    labels: Path | None = None
    #: paired: a real anisotropic acquisition co-registered to ``reference``
    acquired: Path | None = None
    crop: tuple[slice, slice, slice] | None = None


@dataclass
class BenchmarkSpec:
    """What a benchmark run measures: datasets, factors, budget, membrane model, output folder."""

    report_dir: Path
    datasets: list[Dataset]
    factors: list[int]
    budget: Budget = field(default_factory=Budget)
    membrane_train: tuple[Path, Path] | None = None
    #: region of ``membrane_train`` to learn from
    membrane_crop: tuple[slice, slice, slice] | None = None
    overwrite: bool = False
    seed: int = 0
    #: also restore with the shipped pretrained model of each factor, zero-shot (rows
    #: ``skeleton-pretrained`` and ``skelem-pretrained``; skipped at factors without one)
    pretrained: bool = False

    @classmethod
    def from_cli(
        cls,
        report_dir: str | Path,
        data: list[str],
        factors: str,
        quick: bool,
        labels: str | None,
        membrane_train: str | None,
        paired: str | None,
        overwrite: bool,
        pretrained: bool = False,
    ) -> BenchmarkSpec:
        """Build a spec from the options of ``skelem benchmark``.

        Parameters
        ----------
        report_dir : str or Path
            Folder of the report.
        data : list of str
            Isotropic volumes (``--data``); the embedded sample when empty and not paired.
        factors : str
            Comma-separated integer factors, e.g. ``"4,8"``.
        quick : bool
            Use :meth:`Budget.quick`.
        labels : str, optional
            Instance labels of the one ``--data`` volume.
        membrane_train : str, optional
            ``VOL,LABELS`` to train the membrane predictor on.
        paired : str, optional
            ``ANISO,ISO``: a real anisotropic acquisition and its isotropic reference.
        overwrite : bool
            Replace an existing report.
        pretrained : bool
            Also restore with the shipped pretrained models, zero-shot.

        Returns
        -------
        BenchmarkSpec

        Raises
        ------
        ConfigError
            When an option is malformed.
        """
        from skelem.config.models import check_factor
        from skelem.sample_data import sample_path

        parts = [f for f in str(factors).replace(" ", ",").split(",") if f]
        try:
            [float(f) for f in parts]
        except ValueError:
            parts = []
        if not parts:
            raise ConfigError(f"--factors must be integers like 4,8, got {factors!r}.")
        factor_list = [check_factor(f) for f in parts]
        datasets = [Dataset(Path(d).stem.replace(".ome", ""), Path(d)) for d in data]
        if labels:
            if len(datasets) != 1:
                raise ConfigError("--labels needs exactly one --data volume.")
            datasets[0].labels = Path(labels)
        if paired:
            parts = paired.split(",")
            if len(parts) != 2:
                raise ConfigError("--paired takes ANISO,ISO: the anisotropic acquisition and the "
                                  "isotropic reference.")
            datasets.append(Dataset("paired", Path(parts[1]), acquired=Path(parts[0])))
        if not datasets:
            datasets = [Dataset("sample", sample_path())]
        mt = None
        if membrane_train:
            parts = membrane_train.split(",")
            if len(parts) != 2:
                raise ConfigError("--membrane-train takes VOL,LABELS.")
            mt = (Path(parts[0]), Path(parts[1]))
        budget = Budget.quick() if quick else Budget()
        return cls(Path(report_dir), datasets, factor_list, budget, mt, overwrite,
                   pretrained=pretrained)


@dataclass
class Case:
    """One benchmark case: a dataset at one anisotropy factor.

    Parameters
    ----------
    name : str
        Dataset name (report heading, model folder ``models/{name}_x{factor}``).
    acquired : np.ndarray
        The anisotropic input ``(Za, Y, X)`` the learned methods train on.
    gt : np.ndarray
        The isotropic reference on the restored grid, ``(s*(Za-1)+1, Y, X)``.
    voxel_size : tuple of float
        Voxel size ``(z, y, x)`` of ``acquired``, micrometres.
    factor : int
        Anisotropy factor ``s``.
    paired : bool
        True when ``acquired`` is a real anisotropic acquisition co-registered to ``gt``; False
        when it was simulated from ``gt`` (every s-th slice).
    labels : np.ndarray, optional
        Instance labels on the reference's grid (at least ``gt``'s slices), for segmentation.
    """

    name: str
    acquired: np.ndarray
    gt: np.ndarray
    voxel_size: tuple[float, float, float]
    factor: int
    paired: bool = False
    labels: np.ndarray | None = None

    @property
    def acquisition(self) -> str:
        """``"paired"`` (a real acquisition) or ``"simulated"`` (every s-th slice)."""
        return "paired" if self.paired else "simulated"

    def description(self) -> dict[str, str]:
        """The ``acquisition``, ``degradation`` and ``ground_truth`` entries of the case's result.

        Returns
        -------
        dict of str to str
        """
        if self.paired:
            return {"acquisition": "paired",
                    "degradation": "none simulated: a real anisotropic acquisition (paired)",
                    "ground_truth": "co-registered isotropic reference (cropped to the restored "
                                    "grid)"}
        return {"acquisition": "simulated", "degradation": "every s-th slice, slice profile none",
                "ground_truth": "isotropic original (cropped to the restored grid)"}


@dataclass
class EvaluationCrop:
    """The central lateral crop a case is restored and scored on.

    Parameters
    ----------
    input : Volume
        The acquired crop ``(Za, y, x)``, restored by every method.
    reference : np.ndarray
        The reference crop ``(s*(Za-1)+1, y, x)``, float32.
    labels : np.ndarray, optional
        The labels crop, same shape as ``reference``.
    data_range : float
        Intensity span of the reference (:func:`skelem.metrics.reference_data_range`).
    """

    input: Volume
    reference: np.ndarray
    labels: np.ndarray | None
    data_range: float


def _load(path: Path, crop=None) -> tuple[np.ndarray, Volume]:
    vol = open_volume(path)
    data = vol.data[crop] if crop is not None else vol.data[...]
    return np.asarray(data), vol


def simulate_acquisition(
    reference: np.ndarray, factor: int, profile: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate an anisotropic acquisition of an isotropic volume.

    Parameters
    ----------
    reference : np.ndarray
        Isotropic volume ``(Z, Y, X)``, any dtype.
    factor : int
        Anisotropy factor ``s``: every s-th slice is kept.
    profile : dict, optional
        Slice profile (``profile``, ``thickness``, ``sigma``) applied before subsampling.

    Returns
    -------
    acquired : np.ndarray
        ``(Za, Y, X)`` in the reference's dtype (rounded and clipped for integer dtypes).
    ground_truth : np.ndarray
        The reference cropped to the restored grid, ``s*(Za-1)+1`` slices.
    """
    p = profile or {}
    acquired = degrade(reference.astype(np.float32), factor, axis=0,
                       profile=p.get("profile", "none"), thickness=p.get("thickness"),
                       sigma=p.get("sigma"))
    gt = reference[: restored_length(acquired.shape[0], factor)]
    if reference.dtype.kind in "ui":
        info = np.iinfo(reference.dtype)
        acquired = np.clip(np.round(acquired), info.min, info.max)
    return acquired.astype(reference.dtype), gt


def _lateral_crop(shape: tuple[int, ...], size: int | None) -> tuple[slice, slice, slice]:
    if size is None:
        return (slice(None),) * 3
    y, x = shape[1:]
    cy, cx = min(size, y), min(size, x)
    return (slice(None), slice((y - cy) // 2, (y - cy) // 2 + cy),
            slice((x - cx) // 2, (x - cx) // 2 + cx))


def train_case(
    case: Case, spec: BenchmarkSpec, progress: ProgressCallback = no_progress
) -> tuple[ModelArtifact, float]:
    """Train every stage on the case's anisotropic input only.

    Parameters
    ----------
    case : Case
        The case; its models go to ``{report_dir}/models/{name}_x{factor}``.
    spec : BenchmarkSpec
        Budget and report folder.
    progress : ProgressCallback
        Receives the training events.

    Returns
    -------
    artifact : ModelArtifact
        The trained model.
    seconds : float
        Wall-clock training time.
    """
    case_dir = spec.report_dir / "models" / f"{case.name}_x{case.factor}"
    cfg = spec.budget.config(case.factor)
    vol = Volume(case.acquired, case.voxel_size, "micrometer",
                 f"{case.name} ({case.acquisition} x{case.factor})")
    t0 = time.perf_counter()
    artifact = train_model(vol, case_dir, cfg, list(STAGES), progress)
    return artifact, time.perf_counter() - t0


def pretrained_artifact(factor: int) -> ModelArtifact | None:
    """The pretrained model of ``factor`` (the package's, or ``$SKELEM_PRETRAINED_DIR``'s), or
    None when there is none.

    Parameters
    ----------
    factor : int
        Anisotropy factor.

    Returns
    -------
    ModelArtifact or None
    """
    from skelem.models.artifact import load_artifact
    from skelem.models.pretrained import pretrained_factors, pretrained_model_dir

    if factor not in pretrained_factors():
        log.warning("No pretrained model for x%d: the pretrained rows are left out.", factor)
        return None
    return load_artifact(pretrained_model_dir(factor))


def evaluation_crop(case: Case, lateral: int | None) -> EvaluationCrop:
    """The central ``lateral`` x ``lateral`` crop of a case (all of it for ``None``).

    Parameters
    ----------
    case : Case
        The case to crop.
    lateral : int, optional
        Side of the crop in voxels.

    Returns
    -------
    EvaluationCrop
    """
    crop = _lateral_crop(case.acquired.shape, lateral)
    labels = case.labels[: case.gt.shape[0]][crop] if case.labels is not None else None
    return EvaluationCrop(
        Volume(np.ascontiguousarray(case.acquired[crop]), case.voxel_size, "micrometer", case.name),
        case.gt[crop].astype(np.float32), labels, reference_data_range(case.gt),
    )


def restore_timed(
    eval_in: Volume, artifact: ModelArtifact, factor: int, m: MethodSpec, spec: BenchmarkSpec
) -> tuple[np.ndarray, float, int]:
    """Restore ``eval_in`` with one method and time it.

    The skeleton and SkelEM (:data:`TIMED_METHODS`) are run up to ``budget.timing_repeats`` times
    while a run takes less than ``budget.timing_repeat_below`` seconds, each from
    ``torch.manual_seed(spec.seed)``; the fastest run counts.

    Parameters
    ----------
    eval_in : Volume
        The acquired crop.
    artifact : ModelArtifact
        The case's trained model (unused by interpolation).
    factor : int
        Anisotropy factor.
    m : MethodSpec
        The method.
    spec : BenchmarkSpec
        Seed and timing budget.

    Returns
    -------
    restored : np.ndarray
        float32 ``(s*(Za-1)+1, y, x)`` in input intensity units.
    seconds : float
        Wall-clock seconds of the fastest run.
    runs : int
        Number of runs timed.
    """
    budget = spec.budget
    torch.manual_seed(spec.seed)
    t = time.perf_counter()
    learned = m.method not in INTERPOLATION_METHODS
    pred = restore_volume(
        eval_in, artifact if learned else None, factor, m.options(spec.seed), input_units=True
    )
    seconds = time.perf_counter() - t
    runs = 1
    while (m.name in TIMED_METHODS and runs < budget.timing_repeats
           and seconds < budget.timing_repeat_below):
        torch.manual_seed(spec.seed)
        t = time.perf_counter()
        restore_volume(eval_in, artifact, factor, m.options(spec.seed), input_units=True)
        seconds, runs = min(seconds, time.perf_counter() - t), runs + 1
    return pred, seconds, runs


def score_restoration(pred: np.ndarray, evaluation: EvaluationCrop, factor: int) -> dict:
    """Full-reference, reference-free and stripe scores of one restoration.

    Parameters
    ----------
    pred : np.ndarray
        The restored crop ``(s*(Za-1)+1, y, x)``.
    evaluation : EvaluationCrop
        Reference, acquired crop and data range.
    factor : int
        Anisotropy factor.

    Returns
    -------
    dict of str to float
        :func:`skelem.metrics.evaluate_arrays` (border 8), the self-FSC resolutions,
        ``stripe_index`` and ``stripe_excess``.
    """
    eval_gt = evaluation.reference
    scores = evaluate_arrays(pred, eval_gt, data_range=evaluation.data_range, border=EVAL_BORDER,
                             factor=factor, acquired=evaluation.input.data.astype(np.float32))
    scores.update(reference_free_resolution(pred))
    lateral = (0, EVAL_BORDER, EVAL_BORDER)
    pred_c, gt_c = crop_border(pred, lateral), crop_border(eval_gt, lateral)
    scores["stripe_index"] = stripe_index(pred_c, gt_c, factor)
    scores["stripe_excess"] = stripe_excess(pred_c, gt_c, factor)
    return scores


def crossplane_disagreement(
    eval_in: Volume, artifact: ModelArtifact, factor: int, m: MethodSpec, spec: BenchmarkSpec
) -> float:
    """RMS difference of the XZ-only and YZ-only restorations between measured rows.

    Parameters
    ----------
    eval_in : Volume
        The acquired crop.
    artifact : ModelArtifact
        The case's trained model.
    factor : int
        Anisotropy factor.
    m : MethodSpec
        The method, restored once per plane.
    spec : BenchmarkSpec
        Seed.

    Returns
    -------
    float
        :func:`skelem.metrics.pass_disagreement` on the lateral crop (intensity units).
    """
    xz, yz = (
        restore_volume(eval_in, artifact, factor, m.options(spec.seed, planes), input_units=True)
        for planes in ("xz", "yz")
    )
    lateral = (0, EVAL_BORDER, EVAL_BORDER)
    return pass_disagreement(crop_border(xz, lateral), crop_border(yz, lateral), factor)


def run_case(
    case: Case,
    spec: BenchmarkSpec,
    progress: ProgressCallback = no_progress,
    membrane: MembranePredictor | None = None,
    methods: list[MethodSpec] | None = None,
) -> dict:
    """Train on the case's acquisition, restore with each method, score, draw.

    Parameters
    ----------
    case : Case
        The dataset at one factor.
    spec : BenchmarkSpec
        Budget, seed and report folder.
    progress : ProgressCallback
        Receives training and per-method events.
    membrane : MembranePredictor, optional
        With ``case.labels``: adds segmentation scores.
    methods : list of MethodSpec, optional
        Default :func:`benchmark_methods` of the budget.

    Returns
    -------
    dict
        The case's result (``results.json`` entry): description, shapes, training times and
        one row of scores per method; ``figures`` holds the pictures' paths.
    """
    budget = spec.budget
    artifact, train_wall = train_case(case, spec, progress)
    pretrained = pretrained_artifact(case.factor) if spec.pretrained else None
    evaluation = evaluation_crop(case, budget.eval_lateral)
    methods = methods or benchmark_methods(
        budget.ablations, budget.step_sweep, budget.t0_sweep, budget.knob_sweep,
        pretrained=pretrained is not None,
    )
    rows, outputs = {}, {}
    for i, m in enumerate(methods, 1):
        model = pretrained if m.pretrained else artifact
        if model is None:
            continue
        check = None
        if m.pretrained:  # as `skelem restore` without --model: the detail check first
            m, check = _detail_checked(m, evaluation.input, model)
        pred, seconds, runs = restore_timed(evaluation.input, model, case.factor, m, spec)
        scores = score_restoration(pred, evaluation, case.factor)
        if m.crossplane:
            scores["pass_disagreement"] = crossplane_disagreement(
                evaluation.input, model, case.factor, m, spec)
        scores["seconds"] = seconds
        scores["timing_runs"] = runs
        scores["voxels_per_second"] = float(pred.size / max(seconds, 1e-9))
        if membrane is not None and evaluation.labels is not None:
            scores.update(segmentation_scores(membrane.predict(pred), evaluation.labels))
        rows[m.name] = {"group": m.group, **scores}
        if check is not None:
            rows[m.name]["detail_check"] = check.as_dict()
        if m.group not in ("ablation", "knob"):
            outputs[m.name] = pred
        progress(ProgressEvent(f"evaluate {case.name} x{case.factor}", i, len(methods),
                               {"psnr": float(scores.get("psnr", 0.0))}))
    ref_time = rows.get("skeleton", {}).get("seconds")
    for row in rows.values():
        row["time_ratio_to_skeleton"] = row["seconds"] / ref_time if ref_time else None
    result = {
        "dataset": case.name, "factor": case.factor, **case.description(),
        "eval_shape": list(evaluation.reference.shape), "data_range": evaluation.data_range,
        "training_seconds": artifact.provenance.get("training_seconds", {}),
        "training_wall_seconds": train_wall, "methods": rows,
        "pretrained_model": str(pretrained.directory) if pretrained is not None else None,
    }
    result["figures"] = case_figures(spec.report_dir, f"{case.name}_x{case.factor}", case.factor,
                                     evaluation.reference, evaluation.input.data, outputs,
                                     result["methods"])
    return result


def _detail_checked(m: MethodSpec, volume: Volume, model: ModelArtifact):
    """``m`` with the pretrained detail check applied (detail 0 when ``volume`` fails it; see
    :func:`skelem.inference.detail_check.check_pretrained_detail`), and the check (or None)."""
    from skelem.inference.detail_check import check_pretrained_detail

    options = m.restore.model_copy()
    check = check_pretrained_detail(volume, model, options)
    return replace(m, restore=options), check


def case_figures(
    report_dir: Path,
    tag: str,
    factor: int,
    gt: np.ndarray,
    acquired: np.ndarray,
    outputs: dict[str, np.ndarray],
    rows: dict[str, dict],
) -> dict[str, str]:
    """Draw a case's orthoviews, FRC curves, Z spectra and fidelity-perception plane.

    Parameters
    ----------
    report_dir : Path
        The report folder; pictures go to ``figures/{tag}_*.png``.
    tag : str
        ``{dataset}_x{factor}``.
    factor : int
        Anisotropy factor (the input is drawn stretched by it).
    gt, acquired : np.ndarray
        Reference crop and acquired crop.
    outputs : dict of str to np.ndarray
        Restorations by method name.
    rows : dict of str to dict
        Scores by method name (``kid`` and ``psnr`` are plotted).

    Returns
    -------
    dict of str to str
        Path of each picture relative to ``report_dir``.
    """
    from skelem.metrics import frc_z, z_power_spectrum
    from skelem.viz.figures import curves, fidelity_perception_plane, orthoviews

    fig_dir = report_dir / "figures"
    views = {"reference": gt, f"input x{factor}": acquired.astype(np.float32)}
    views.update({k: v for k, v in outputs.items() if k in HEADLINE_METHODS})
    figures = {"orthoviews": orthoviews(views, fig_dir / f"{tag}_orthoviews.png",
                                        voxel_aspect={f"input x{factor}": float(factor)})}
    frc = {k: (c.freqs, c.values)
           for k, c in ((k, frc_z(v, gt)) for k, v in outputs.items() if k != "nearest")}
    figures["frc"] = curves(frc, fig_dir / f"{tag}_frc_z.png", "spatial frequency (cycles/voxel)",
                            "FRC with reference (XZ/YZ)", f"{tag}: Fourier ring correlation",
                            hline=1 / 7)
    spectra = {"reference": z_power_spectrum(gt)}
    spectra.update({k: z_power_spectrum(v) for k, v in outputs.items() if k in HEADLINE_METHODS})
    figures["z_spectrum"] = curves(spectra, fig_dir / f"{tag}_z_spectrum.png",
                                   "frequency along Z (cycles/voxel)", "power",
                                   f"{tag}: Z power spectrum", logy=True)
    points = {k: (r["kid"], r["psnr"]) for k, r in rows.items()
              if "kid" in r and np.isfinite(r["psnr"])}
    knob = sorted((k for k in points if k.startswith("skelem-detail-")),
                  key=lambda k: float(k.rsplit("-", 1)[1]))
    figures["fidelity_perception"] = fidelity_perception_plane(
        points, fig_dir / f"{tag}_fidelity_perception.png", curve=knob,
        xlabel="KID on fixed texture features (lower is better)",
        title=f"{tag}: fidelity vs perception")
    return {key: str(path.relative_to(report_dir)) for key, path in figures.items()}


def dataset_cases(
    ds: Dataset, factors: list[int], labels: np.ndarray | None = None
) -> Iterator[Case]:
    """The cases of one dataset: one per factor, or the one paired acquisition.

    Parameters
    ----------
    ds : Dataset
        The dataset; with ``ds.acquired`` a paired case at the acquisition's factor (from its
        voxel size, else ``factors[0]``).
    factors : list of int
        Factors to simulate.
    labels : np.ndarray, optional
        The dataset's labels, passed on to each case.

    Yields
    ------
    Case

    Raises
    ------
    InputError
        When a paired reference does not cover the acquisition's restored grid.
    """
    reference, vol = _load(ds.reference, ds.crop)
    voxel = vol.voxel_size or (1.0, 1.0, 1.0)
    if ds.acquired is not None:
        acquired, avol = _load(ds.acquired)
        factor = avol.anisotropy_factor(factors[0] if avol.voxel_size is None else None)
        n_restored = restored_length(acquired.shape[0], factor)
        gt = reference[:n_restored]
        if gt.shape[1:] != acquired.shape[1:] or gt.shape[0] != n_restored:
            raise InputError(f"The paired reference {ds.reference} does not cover the "
                             "acquisition's restored grid.")
        voxel_size = avol.voxel_size or (voxel[0] * factor, voxel[1], voxel[2])
        yield Case(ds.name, acquired, gt, voxel_size, factor, paired=True, labels=labels)
        return
    for factor in factors:
        acquired, gt = simulate_acquisition(reference, factor)
        yield Case(ds.name, acquired, gt, (voxel[0] * factor, voxel[1], voxel[2]), factor,
                   labels=labels)


def run_benchmark(spec: BenchmarkSpec, progress: ProgressCallback = no_progress) -> str:
    """Run every dataset x factor, write the report, return a short text summary.

    Parameters
    ----------
    spec : BenchmarkSpec
        What to run.
    progress : ProgressCallback
        Receives training and evaluation events.

    Returns
    -------
    str
        :func:`summary_lines` of the cases.

    Raises
    ------
    OutputExistsError
        When the folder holds a report and ``spec.overwrite`` is false.
    InputError
        When a data file is missing (checked before anything is written).
    """
    report = spec.report_dir
    if (report / "report.md").exists() and not spec.overwrite:
        raise OutputExistsError(f"{report} already holds a report; pass --overwrite to replace it.")
    for ds in spec.datasets:
        for path in (ds.reference, ds.labels, ds.acquired):
            if path is not None and not path.exists():
                raise InputError(f"Benchmark data {path} does not exist.")
    report.mkdir(parents=True, exist_ok=True)
    membrane = None
    if spec.membrane_train:
        from skelem.evaluation.membrane import MembranePredictor, save_membrane_predictor

        image, _ = _load(spec.membrane_train[0], spec.membrane_crop)
        labels, _ = _load(spec.membrane_train[1], spec.membrane_crop)
        membrane = MembranePredictor.train(image, labels, spec.budget.membrane_iterations,
                                           progress=progress)
        save_membrane_predictor(membrane, report / "membrane")
    cases = []
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    for ds in spec.datasets:
        labels = _load(ds.labels, ds.crop)[0] if ds.labels else None
        for case in dataset_cases(ds, spec.factors, labels):
            cases.append(run_case(case, spec, progress, membrane))
    meta = {"started": started, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": machine_description(), "budget": spec.budget.__dict__,
            "datasets": [str(d.reference) for d in spec.datasets]}
    write_text_atomic(report / "results.json",
                      json.dumps({"meta": meta, "cases": cases}, indent=2, default=_json_default))
    from skelem.evaluation.report import write_report

    path = write_report(report, meta, cases)
    return summary_lines(cases, path)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def machine_description() -> str:
    """One line: architecture, OS, CPU cores, torch version and threads, CUDA or CPU only.

    Returns
    -------
    str
    """
    import os

    return (f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{'CUDA' if torch.cuda.is_available() else 'CPU only'}")


def summary_lines(cases: list[dict], report_path: Path) -> str:
    """A few lines for the terminal: the report's path and, per case, a small table of the
    headline methods' fidelity (PSNR), perception (KID, Z detail) and restore time.

    Parameters
    ----------
    cases : list of dict
        Results of :func:`run_case`.
    report_path : Path
        Where ``report.md`` was written.

    Returns
    -------
    str
    """
    lines = [f"report: {report_path}"]
    columns = (("psnr", "PSNR dB", "{:.2f}"), ("kid", "KID", "{:.3f}"),
               ("hf_energy_ratio", "Z detail", "{:.2f}"), ("seconds", "restore s", "{:.1f}"))
    for case in cases:
        m = case["methods"]
        names = [k for k in HEADLINE_METHODS if k in m]
        present = [c for c in columns if any(c[0] in m[k] for k in names)]
        width = max([len(k) for k in names] + [6])
        lines.append(f"{case['dataset']} x{case['factor']}, scored against the isotropic original:")
        lines.append("  " + "method".ljust(width) + "".join(f"  {c[1]:>9}" for c in present))
        for k in names:
            cells = "".join(
                f"  {c[2].format(m[k][c[0]]) if c[0] in m[k] else '-':>9}" for c in present
            )
            lines.append("  " + k.ljust(width) + cells)
        lines.append("  PSNR: fidelity, higher is better. KID: texture distance to the original, "
                     "lower is better.")
        lines.append("  Z detail: high-frequency energy along Z (original = 1; below 1 is too "
                     "smooth).")
        if case.get("pretrained_model"):
            from skelem.models.pretrained import PRETRAINED_DIR

            folder = Path(case["pretrained_model"])
            where = "shipped" if folder.parent == PRETRAINED_DIR else f"in {folder}"
            lines.append(f"  *-pretrained: the pretrained FIB-SEM x{case['factor']} model "
                         f"({where}), zero-shot (trained once on other FIB-SEM, not on this "
                         "volume); skeleton and skelem: trained on this input alone.")
        if "skelem" in m and "skeleton" in m and m["skeleton"]["seconds"]:
            cost = m["skelem"]["seconds"] / m["skeleton"]["seconds"]
            faster = (f", {m['diffusion-50']['seconds'] / m['skelem']['seconds']:.1f}x faster than "
                      "50-step diffusion" if "diffusion-50" in m else "")
            lines.append(f"  SkelEM costs {cost:.1f}x the skeleton{faster}")
    return "\n".join(lines)


def run_demo(
    out_dir: str | Path,
    factor: int = 8,
    overwrite: bool = False,
    progress: ProgressCallback = no_progress,
) -> str:
    """The README's main job on the embedded sample, in a few minutes on a 2-core CPU.

    Simulates a ``factor`` acquisition of the sample, trains on it with the quick preset,
    restores with every headline method and with the shipped pretrained model of the factor
    (zero-shot: the sample is from the half of ``fibsem_medulla_t2`` no pretrained model saw),
    scores against the isotropic original and writes the report.

    Parameters
    ----------
    out_dir : str or Path
        Folder of the demo report.
    factor : int
        Anisotropy factor to simulate.
    overwrite : bool
        Delete an existing demo folder first.
    progress : ProgressCallback
        Receives training and evaluation events.

    Returns
    -------
    str
        The benchmark summary and the sample's attribution.
    """
    from skelem.sample_data import ATTRIBUTION, sample_path

    out_dir = Path(out_dir)
    if out_dir.exists() and overwrite:
        shutil.rmtree(out_dir)
    budget = Budget.quick()
    budget.ablations, budget.step_sweep, budget.t0_sweep, budget.eval_lateral = False, (), (), 80
    budget.knob_sweep = ()
    spec = BenchmarkSpec(out_dir, [Dataset("sample", sample_path())], [factor], budget,
                         overwrite=overwrite, pretrained=True)
    if (out_dir / "report.md").exists():
        raise OutputExistsError(f"{out_dir} already holds a demo report; pass --overwrite to run "
                                "it again.")
    return run_benchmark(spec, progress) + f"\n{ATTRIBUTION}"
