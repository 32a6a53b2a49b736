"""``skelem benchmark`` and ``skelem demo``: every method side by side on data with a reference.

For each isotropic volume and factor: simulate the anisotropic acquisition (keep every s-th slice),
train SkelEM (skeleton, refiner, alignment) and the pure-diffusion peer on the *anisotropic input
only*, restore with every method, evaluate against the isotropic original, and write
``report.md``, ``results.json`` and pictures. A paired entry replaces the simulation with a real
anisotropic acquisition and a co-registered isotropic reference.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from skelem.config.models import ExperimentConfig, build_config
from skelem.data.degradation import degrade
from skelem.errors import ConfigError, InputError, OutputExistsError
from skelem.evaluation.evaluate import reference_free_resolution
from skelem.evaluation.methods import MethodSpec, benchmark_methods
from skelem.events import ProgressCallback, ProgressEvent, no_progress
from skelem.inference.restore import restore_volume
from skelem.io import Volume, open_volume
from skelem.training.pipeline import STAGES, train_model

log = logging.getLogger(__name__)


@dataclass
class Budget:
    """Training budgets and network sizes of a benchmark run."""

    skeleton_iterations: int = 1500
    refiner_iterations: int = 1500
    alignment_iterations: int = 150
    patch_size: int = 64
    batch_size: int = 8
    membrane_iterations: int = 600
    eval_lateral: int | None = 96  # evaluate on a central lateral crop of this size (None: all)
    step_sweep: tuple[int, ...] = (1, 2, 10, 50)
    t0_sweep: tuple[int, ...] = (100, 400)
    ablations: bool = True
    # restore seconds: the fastest of this many runs for the learned headline methods (skeleton,
    # SkelEM; not ablations, not runs longer than timing_repeat_below seconds): single CPU timings
    # of a few seconds vary by +-20% on a shared machine
    timing_repeats: int = 3
    timing_repeat_below: float = 60.0

    @classmethod
    def quick(cls) -> Budget:
        return cls(skeleton_iterations=300, refiner_iterations=300, alignment_iterations=30,
                   patch_size=64, batch_size=8, membrane_iterations=200, eval_lateral=96,
                   step_sweep=(1, 2, 10), t0_sweep=(100,), ablations=True)

    def config(self, factor: int, profile: dict | None = None) -> ExperimentConfig:
        train = {"patch_size": self.patch_size, "batch_size": self.batch_size}
        return build_config({
            "degradation": {"factor": factor, **(profile or {})},
            "skeleton_training": {**train, "iterations": self.skeleton_iterations, "checkpoint_every": 100},
            "refiner_training": {**train, "iterations": self.refiner_iterations, "learning_rate": 1e-3, "checkpoint_every": 100},
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
    acquired: Path | None = None  # paired: a real anisotropic acquisition co-registered to reference
    crop: tuple[slice, slice, slice] | None = None


@dataclass
class BenchmarkSpec:
    report_dir: Path
    datasets: list[Dataset]
    factors: list[int]
    budget: Budget = field(default_factory=Budget)
    membrane_train: tuple[Path, Path] | None = None
    membrane_crop: tuple[slice, slice, slice] | None = None  # region of membrane_train to learn from
    overwrite: bool = False
    seed: int = 0

    @classmethod
    def from_cli(cls, report_dir, data, factors, quick, labels, membrane_train, paired, overwrite) -> BenchmarkSpec:
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
                raise ConfigError("--paired takes ANISO,ISO: the anisotropic acquisition and the isotropic reference.")
            datasets.append(Dataset("paired", Path(parts[1]), acquired=Path(parts[0])))
        if not datasets:
            datasets = [Dataset("sample", sample_path())]
        mt = None
        if membrane_train:
            parts = membrane_train.split(",")
            if len(parts) != 2:
                raise ConfigError("--membrane-train takes VOL,LABELS.")
            mt = (Path(parts[0]), Path(parts[1]))
        return cls(Path(report_dir), datasets, factor_list, Budget.quick() if quick else Budget(), mt, overwrite)


def _load(path: Path, crop=None) -> tuple[np.ndarray, Volume]:
    vol = open_volume(path)
    data = vol.data[crop] if crop is not None else vol.data[...]
    return np.asarray(data), vol


def simulate_acquisition(reference: np.ndarray, factor: int, profile: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(acquired, ground_truth)``: every ``factor``-th slice (after the slice profile) and the
    reference cropped to the restored grid ``factor*(Z_acquired-1)+1`` slices."""
    p = profile or {}
    acquired = degrade(reference.astype(np.float32), factor, axis=0, profile=p.get("profile", "none"),
                       thickness=p.get("thickness"), sigma=p.get("sigma"))
    gt = reference[: factor * (acquired.shape[0] - 1) + 1]
    if reference.dtype.kind in "ui":
        acquired = np.clip(np.round(acquired), np.iinfo(reference.dtype).min, np.iinfo(reference.dtype).max)
    return acquired.astype(reference.dtype), gt


def _lateral_crop(shape: tuple[int, ...], size: int | None) -> tuple[slice, slice, slice]:
    if size is None:
        return (slice(None),) * 3
    y, x = shape[1:]
    cy, cx = min(size, y), min(size, x)
    return (slice(None), slice((y - cy) // 2, (y - cy) // 2 + cy), slice((x - cx) // 2, (x - cx) // 2 + cx))


def run_case(
    name: str,
    acquired: np.ndarray,
    gt: np.ndarray,
    voxel_size: tuple[float, float, float],
    factor: int,
    spec: BenchmarkSpec,
    progress: ProgressCallback = no_progress,
    labels: np.ndarray | None = None,
    membrane=None,
    methods: list[MethodSpec] | None = None,
) -> dict:
    """Train on ``acquired``, restore with each method on the evaluation crop, evaluate against ``gt``."""
    from skelem.metrics import crop_border, evaluate_arrays, pass_disagreement, stripe_index

    budget = spec.budget
    case_dir = spec.report_dir / "models" / f"{name}_x{factor}"
    cfg = budget.config(factor)
    vol = Volume(acquired, voxel_size, "micrometer", f"{name} (simulated x{factor})")
    t0 = time.perf_counter()
    artifact = train_model(vol, case_dir, cfg, list(STAGES), progress)
    train_wall = time.perf_counter() - t0
    crop = _lateral_crop(acquired.shape, budget.eval_lateral)
    eval_in = Volume(np.ascontiguousarray(acquired[crop]), voxel_size, "micrometer", name)
    eval_gt = gt[crop].astype(np.float32)
    data_range = float(np.iinfo(gt.dtype).max) if gt.dtype.kind in "ui" else float(gt.max() - gt.min())
    methods = methods or benchmark_methods(budget.ablations, budget.step_sweep, budget.t0_sweep)
    rows, outputs = {}, {}
    for i, m in enumerate(methods, 1):
        torch.manual_seed(spec.seed)
        t = time.perf_counter()
        learned = m.method not in ("nearest", "linear", "cubic")
        pred = restore_volume(eval_in, artifact if learned else None, factor, m.options(spec.seed), input_units=True)
        seconds = time.perf_counter() - t
        runs = 1
        while learned and m.group != "ablation" and runs < budget.timing_repeats and seconds < budget.timing_repeat_below:
            torch.manual_seed(spec.seed)
            t = time.perf_counter()
            restore_volume(eval_in, artifact, factor, m.options(spec.seed), input_units=True)
            seconds, runs = min(seconds, time.perf_counter() - t), runs + 1
        scores = evaluate_arrays(pred, eval_gt, data_range=data_range, border=8, factor=factor,
                                 acquired=eval_in.data.astype(np.float32))
        scores.update(reference_free_resolution(pred))
        scores["stripe_index"] = stripe_index(crop_border(pred, (0, 8, 8)), crop_border(eval_gt, (0, 8, 8)), factor)
        if m.crossplane:
            xz, yz = (restore_volume(eval_in, artifact, factor, m.options(spec.seed, planes), input_units=True)
                      for planes in ("xz", "yz"))
            scores["pass_disagreement"] = pass_disagreement(crop_border(xz, (0, 8, 8)), crop_border(yz, (0, 8, 8)), factor)
        scores["seconds"] = seconds
        scores["timing_runs"] = runs
        scores["voxels_per_second"] = float(pred.size / max(seconds, 1e-9))
        if membrane is not None and labels is not None:
            scores.update(segmentation_scores(membrane, pred, labels[: gt.shape[0]][crop]))
        rows[m.name] = {"group": m.group, **scores}
        if m.group != "ablation":
            outputs[m.name] = pred
        progress(ProgressEvent(f"evaluate {name} x{factor}", i, len(methods), {"psnr": float(scores.get("psnr", 0.0))}))
    ref_time = rows.get("skeleton", {}).get("seconds")
    for row in rows.values():
        row["time_ratio_to_skeleton"] = row["seconds"] / ref_time if ref_time else None
    result = {
        "dataset": name, "factor": factor, "degradation": "every s-th slice, slice profile none",
        "ground_truth": "isotropic original (cropped to the restored grid)",
        "eval_shape": list(eval_gt.shape), "data_range": data_range,
        "training_seconds": artifact.provenance.get("training_seconds", {}),
        "training_wall_seconds": train_wall, "methods": rows,
    }
    _case_figures(spec.report_dir, name, factor, eval_gt, eval_in.data, outputs, result)
    return result


def segmentation_scores(membrane, pred: np.ndarray, labels: np.ndarray) -> dict:
    """Membrane map -> watershed -> VI (split, merge) and adapted Rand error against ``labels``."""
    from skelem.metrics import adapted_rand_error, membrane_watershed, variation_of_information

    prob = membrane.predict(pred)
    seg = membrane_watershed(prob)
    split, merge = variation_of_information(seg, labels)
    return {"vi_split": float(split), "vi_merge": float(merge), "vi": float(split + merge),
            "adapted_rand": float(adapted_rand_error(seg, labels))}


def _case_figures(report_dir: Path, name: str, factor: int, gt, acquired, outputs: dict, result: dict) -> None:
    from skelem.metrics import frc_z, z_power_spectrum
    from skelem.viz.figures import curves, fidelity_perception_plane, orthoviews

    fig_dir = report_dir / "figures"
    tag = f"{name}_x{factor}"
    views = {"reference": gt, f"input x{factor}": acquired.astype(np.float32)}
    views.update({k: v for k, v in outputs.items() if k in ("cubic", "skeleton", "diffusion-50", "skelem")})
    result["figures"] = {"orthoviews": str(orthoviews(views, fig_dir / f"{tag}_orthoviews.png",
                                                      voxel_aspect={f"input x{factor}": float(factor)}).relative_to(report_dir))}
    frc = {k: (c.freqs, c.values) for k, c in ((k, frc_z(v, gt)) for k, v in outputs.items() if k != "nearest")}
    result["figures"]["frc"] = str(curves(frc, fig_dir / f"{tag}_frc_z.png", "spatial frequency (cycles/voxel)",
                                          "FRC with reference (XZ/YZ)", f"{tag}: Fourier ring correlation", hline=1 / 7).relative_to(report_dir))
    spectra = {"reference": z_power_spectrum(gt)}
    spectra.update({k: z_power_spectrum(v) for k, v in outputs.items() if k in ("cubic", "skeleton", "diffusion-50", "skelem")})
    result["figures"]["z_spectrum"] = str(curves(spectra, fig_dir / f"{tag}_z_spectrum.png", "frequency along Z (cycles/voxel)",
                                                 "power", f"{tag}: Z power spectrum", logy=True).relative_to(report_dir))
    points = {k: (r["kid"], r["psnr"]) for k, r in result["methods"].items() if "kid" in r and np.isfinite(r["psnr"])}
    result["figures"]["fidelity_perception"] = str(fidelity_perception_plane(
        points, fig_dir / f"{tag}_fidelity_perception.png", xlabel="KID on fixed texture features (lower is better)",
        title=f"{tag}: fidelity vs perception").relative_to(report_dir))


def run_benchmark(spec: BenchmarkSpec, progress: ProgressCallback = no_progress) -> str:
    """Run every dataset x factor, write the report, return a short text summary."""
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
        membrane = MembranePredictor.train(image, labels, spec.budget.membrane_iterations, progress=progress)
        save_membrane_predictor(membrane, report / "membrane")
    cases = []
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    for ds in spec.datasets:
        reference, vol = _load(ds.reference, ds.crop)
        voxel = vol.voxel_size or (1.0, 1.0, 1.0)
        labels = _load(ds.labels, ds.crop)[0] if ds.labels else None
        if ds.acquired is not None:
            acquired, avol = _load(ds.acquired)
            factor = avol.anisotropy_factor(spec.factors[0] if avol.voxel_size is None else None)
            gt = reference[: factor * (acquired.shape[0] - 1) + 1]
            if gt.shape[1:] != acquired.shape[1:] or gt.shape[0] != factor * (acquired.shape[0] - 1) + 1:
                raise InputError(f"The paired reference {ds.reference} does not cover the acquisition's restored grid.")
            cases.append(run_case(ds.name, acquired, gt, avol.voxel_size or (voxel[0] * factor, voxel[1], voxel[2]),
                                  factor, spec, progress, labels, membrane))
            continue
        for factor in spec.factors:
            acquired, gt = simulate_acquisition(reference, factor)
            cases.append(run_case(ds.name, acquired, gt, (voxel[0] * factor, voxel[1], voxel[2]), factor, spec,
                                  progress, labels, membrane))
    meta = {"started": started, "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine_description(),
            "budget": spec.budget.__dict__, "datasets": [str(d.reference) for d in spec.datasets]}
    (report / "results.json").write_text(json.dumps({"meta": meta, "cases": cases}, indent=2, default=_json_default))
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
    import os

    return (f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, {'CUDA' if torch.cuda.is_available() else 'CPU only'}")


def summary_lines(cases: list[dict], report_path: Path) -> str:
    lines = [f"report: {report_path}"]
    for case in cases:
        m = case["methods"]
        parts = [f"{k} {m[k]['psnr']:.2f} dB" for k in ("cubic", "skeleton", "diffusion-50", "skelem") if k in m]
        lines.append(f"{case['dataset']} x{case['factor']} PSNR: " + ", ".join(parts))
        if "skelem" in m and "skeleton" in m and m["skeleton"]["seconds"]:
            lines.append(f"  SkelEM costs {m['skelem']['seconds'] / m['skeleton']['seconds']:.1f}x the skeleton"
                         + (f", {m['diffusion-50']['seconds'] / m['skelem']['seconds']:.1f}x faster than 50-step diffusion"
                            if "diffusion-50" in m else ""))
    return "\n".join(lines)


def run_demo(out_dir: str | Path, factor: int = 4, overwrite: bool = False, progress: ProgressCallback = no_progress) -> str:
    """The README's main job on the embedded sample, in a few minutes on a 2-core CPU."""
    from skelem.sample_data import ATTRIBUTION, sample_path

    out_dir = Path(out_dir)
    if out_dir.exists() and overwrite:
        shutil.rmtree(out_dir)
    budget = Budget.quick()
    budget.ablations, budget.step_sweep, budget.t0_sweep, budget.eval_lateral = False, (), (), 80  # no sweeps
    spec = BenchmarkSpec(out_dir, [Dataset("sample", sample_path())], [factor], budget, overwrite=overwrite)
    if (out_dir / "report.md").exists():
        raise OutputExistsError(f"{out_dir} already holds a demo report; pass --overwrite to run it again.")
    return run_benchmark(spec, progress) + f"\n{ATTRIBUTION}"
