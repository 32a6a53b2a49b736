"""``train_model``: skeleton -> refiner -> alignment (and the pure-diffusion peer) on one volume.

Each stage writes a resumable checkpoint in ``MODEL_DIR/checkpoints`` while it runs and, when it
finishes, its slim weights and an updated manifest. Running the same command again skips finished
stages and continues an interrupted one from its last checkpoint.

The stages are described once, in :data:`STAGE_SPECS` (which network each trains, which training
section and seed offset it uses, how its step loss is made, where it checkpoints, what it needs),
and :func:`train_model` runs them in one loop.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from skelem.atomic import atomic_path
from skelem.config.models import ExperimentConfig, NetworkConfig, TrainingConfig, save_config
from skelem.data.normalize import PercentileNormalizer
from skelem.data.pairs import (
    MixedPairSampler,
    PairSampler,
    ReferencePlanes,
    axial_pair_samplers,
    check_reference_shape,
    pair_orientations,
)
from skelem.errors import ConfigError, InputError, ModelError
from skelem.events import ProgressCallback, no_progress
from skelem.io import Volume
from skelem.io.paths import check_output_apart, resolve_uri
from skelem.io.validate import validate_volume
from skelem.models.artifact import MANIFEST, WEIGHT_FILES, ModelArtifact, load_artifact
from skelem.models.device import cpu_fast_layout, resolve_device
from skelem.models.factory import build_diffusion_peer, build_refiner, build_skeleton, save_weights
from skelem.training import stages as st
from skelem.training.loop import StepLoss, train_stage

log = logging.getLogger(__name__)


@dataclass
class _Run:
    """What the stages of one :func:`train_model` call share."""

    volume: Volume
    artifact: ModelArtifact
    config: ExperimentConfig
    device: torch.device
    skeleton: torch.nn.Module | None = None  # the trained skeleton, loaded once when needed
    init: ModelArtifact | None = None  # fresh networks start from its weights (fine-tuning)


@dataclass(frozen=True)
class StageSpec:
    """How one training stage is run.

    Parameters
    ----------
    name : str
        Stage name, as in ``--stages`` and the manifest's ``stages``.
    task : str
        Progress-event task name.
    training : str
        The :class:`~skelem.config.models.ExperimentConfig` section with its training settings.
    seed_offset : int
        Added to that section's seed for the pair sampler (and a fresh network's initial weights).
    network : str
        The weights the stage writes (``ModelArtifact.weights_path(network)``).
    make_network : callable
        ``make_network(run, training)``: the network to train, on the run's device.
    make_step : callable
        ``make_step(run, sampler, training)``: the stage's ``step_loss(model, step)``.
    checkpoint : str
        File name of its resumable checkpoint in ``MODEL_DIR/checkpoints``.
    patch_label : str
        How the stage is named when its patches do not fit the volume.
    needs_skeleton : bool
        The trained skeleton must exist (it is loaded before the stage starts).
    prerequisite : str, optional
        Another stage that must already be trained in the model directory.
    """

    name: str
    task: str
    training: str
    seed_offset: int
    network: str
    make_network: Callable[[_Run, TrainingConfig], torch.nn.Module]
    make_step: Callable[[_Run, PairSampler, TrainingConfig], StepLoss]
    checkpoint: str
    patch_label: str
    needs_skeleton: bool = True
    prerequisite: str | None = None


def _fresh(
    builder: Callable[[NetworkConfig], torch.nn.Module], section: str, seed_offset: int
) -> Callable[[_Run, TrainingConfig], torch.nn.Module]:
    """A new network from ``config.<section>``, initialised from ``training.seed + seed_offset``."""

    def make(run: _Run, training: TrainingConfig) -> torch.nn.Module:
        torch.manual_seed(training.seed + seed_offset)
        model = builder(getattr(run.config, section)).to(run.device)
        # the refiner starts from the weights before alignment when the model has them
        names = ("refiner_unaligned", "refiner") if section == "refiner" else (section,)
        network = next((n for n in names if run.init is not None and run.init.has(n)), None)
        if network is not None:
            start = run.init.load_network(network, run.device)
            model.load_state_dict(start.state_dict())
            log.info("%s starts from %s's weights", section, run.init.directory)
        return model

    return make


def _trainable_refiner(run: _Run, training: TrainingConfig) -> torch.nn.Module:
    """The trained refiner to align; its weights before alignment are kept once."""
    unaligned = run.artifact.weights_path("refiner_unaligned")
    if not unaligned.exists():
        # a kill mid-copy must not leave a truncated file that a rerun would take as the copy
        with atomic_path(unaligned) as tmp:
            shutil.copyfile(run.artifact.weights_path("refiner"), tmp)
    model = run.artifact.load_network("refiner", run.device)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def _skeleton_step(run: _Run, sampler: PairSampler, training: TrainingConfig) -> StepLoss:
    return st.skeleton_step(sampler, run.config, run.device)


def _refiner_step(run: _Run, sampler: PairSampler, training: TrainingConfig) -> StepLoss:
    """Measures (or reads) the residual scale, records it in the artifact, then the step loss."""
    scale = run.config.diffusion.residual_scale or st.residual_rms(
        sampler, run.skeleton, run.config, run.device
    )
    run.artifact.residual_scale = scale
    log.info("refiner residual scale %.4f", scale)
    return st.refiner_step(sampler, run.skeleton, run.config, run.device, scale)


def _peer_step(run: _Run, sampler: PairSampler, training: TrainingConfig) -> StepLoss:
    return st.peer_step(sampler, run.config, run.device)


def _alignment_step(run: _Run, sampler: PairSampler, training: TrainingConfig) -> StepLoss:
    cross = _cross_sampler(run.volume, run.artifact, training.patch_size // 2)
    return st.alignment_step(
        sampler, cross, run.skeleton, run.config, run.device, run.artifact.residual_scale
    )


STAGE_SPECS: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (
        StageSpec(
            "skeleton",
            "train-skeleton",
            "skeleton_training",
            0,
            "skeleton",
            _fresh(build_skeleton, "skeleton", 0),
            _skeleton_step,
            "skeleton.pt",
            "skeleton training",
            needs_skeleton=False,
        ),
        StageSpec(
            "refiner",
            "train-refiner",
            "refiner_training",
            0,
            "refiner",
            _fresh(build_refiner, "refiner", 0),
            _refiner_step,
            "refiner.pt",
            "refiner training",
        ),
        StageSpec(
            "alignment",
            "align-refiner",
            "alignment_training",
            2,
            "refiner",
            _trainable_refiner,
            _alignment_step,
            "alignment.pt",
            "alignment",
            prerequisite="refiner",
        ),
        StageSpec(
            "diffusion_peer",
            "train-diffusion-peer",
            "refiner_training",
            1,
            "diffusion_peer",
            _fresh(build_diffusion_peer, "diffusion_peer", 1),
            _peer_step,
            "diffusion_peer.pt",
            "diffusion-peer training",
        ),
    )
}
"""Every stage, in the order they run."""

STAGES = tuple(STAGE_SPECS)
DEFAULT_STAGES = ("skeleton", "refiner", "alignment")


def parse_stages(text: str) -> list[str]:
    """``"skeleton,refiner"`` / ``"all"`` -> ordered stage names.

    Parameters
    ----------
    text : str
        Comma-separated stage names (``-`` or ``_``), or ``all``.

    Returns
    -------
    list of str
        The named stages in the order they run.

    Raises
    ------
    ConfigError
        A name is not a stage, or none is given.
    """
    if text.strip() == "all":
        return list(STAGES)
    names = [s.strip().replace("-", "_") for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in STAGES]
    if unknown or not names:
        raise ConfigError(
            f"Unknown stage {unknown[0] if unknown else text!r}; "
            f"choose from {', '.join(STAGES)} or all."
        )
    return [s for s in STAGES if s in names]


def _pair_sampler(
    data,
    cfg: ExperimentConfig,
    normalizer: PercentileNormalizer,
    patch: int,
    seed: int,
    references: tuple[ReferencePlanes, ...] = (),
) -> PairSampler | MixedPairSampler:
    """The volume's XY pairs; with isotropic references, mixed with their true Z pairs
    (``cfg.reference_share`` of the items, the references weighted by their voxel counts)."""
    d = cfg.degradation
    own = PairSampler(
        data,
        d.factor,
        profile=d.profile,
        thickness=d.thickness,
        sigma=d.sigma,
        patch_size=patch,
        normalizer=normalizer,
        seed=seed,
    )
    if not references:
        return own
    share = cfg.reference_share
    parts, weights = ([own], [1.0 - share]) if share < 1 else ([], [])
    total = sum(float(np.prod(r.shape)) for r in references)
    for ref in references:
        for plane in axial_pair_samplers(
            ref, d.factor, d.profile, d.thickness, d.sigma, patch, seed, cfg.skeleton.context
        ):
            parts.append(plane)
            weights.append(share * float(np.prod(ref.shape)) / total / 2)
    return MixedPairSampler(parts, weights)


def _check_references(
    references: tuple[Volume, ...], config: ExperimentConfig, stages: Sequence[str]
) -> None:
    """Refuse, in one sentence, a reference volume that is unusable, not isotropic, or too small
    for the patches of a requested stage that learns from its pairs."""
    trainings = {
        STAGE_SPECS[s].training for s in stages if s != "alignment"
    }  # the alignment learns from the volume alone
    for ref in references:
        validate_volume(ref, min_slices=3)
        if ref.voxel_size is not None:
            low, high = min(ref.voxel_size), max(ref.voxel_size)
            if high > 1.1 * low:
                raise InputError(
                    f"The reference volume {ref.source} has voxel size {ref.voxel_size} (z, y, x): "
                    "a reference must be isotropic, its XZ and YZ planes are used as true Z pairs."
                )
        d = config.degradation
        for tc in (getattr(config, t) for t in sorted(trainings)):
            check_reference_shape(
                ref.shape,
                d.factor,
                tc.patch_size,
                d.profile,
                d.thickness,
                d.sigma,
                f"reference volume {ref.source}",
            )


def train_model(
    volume: Volume,
    model_dir: str | Path,
    config: ExperimentConfig,
    stages: list[str] | tuple[str, ...] = DEFAULT_STAGES,
    progress: ProgressCallback = no_progress,
    init_from: ModelArtifact | None = None,
    references: tuple[Volume, ...] | list[Volume] = (),
) -> ModelArtifact:
    """Train the requested stages on ``volume`` (anisotropic, ``(Z, Y, X)``) into ``model_dir``.

    The skeleton is trained first and frozen; the refiner, peer and alignment stages need it.

    Parameters
    ----------
    volume : Volume
        The anisotropic volume to learn from.
    model_dir : str or Path
        The model directory (created, or continued when it holds a model of the same config).
    config : ExperimentConfig
    stages : sequence of str
        Stages to run (see :data:`STAGE_SPECS`); already trained ones are skipped.
    progress : ProgressCallback
        Receives the stages' progress events.
    init_from : ModelArtifact, optional
        Fine-tuning: every network a stage creates starts from this model's weights (the refiner
        from its weights before alignment) instead of a random initialisation. Its network
        configurations must equal ``config``'s.
    references : sequence of Volume
        Isotropic volumes of similar data: their XZ and YZ slices degraded along Z are training
        pairs in the restore's own planes and direction, ``config.reference_share`` of every
        batch of the skeleton, refiner and peer stages
        (:func:`skelem.data.pairs.axial_pair_samplers`).
        The alignment stage learns from ``volume`` alone.

    Returns
    -------
    ModelArtifact
        The model directory's artifact, with the stages trained so far.

    Raises
    ------
    InputError
        ``model_dir`` is, lies inside or holds the volume's file or store, a reference's, or the
        starting model; a reference is not 3-D, not isotropic or too small.
    ModelError
        ``model_dir`` holds a model made with another configuration or is a file, or a needed
        network is missing.
    ConfigError
        A stage's prerequisite is not trained, or the volume is too small for its patches.
    """
    model_dir = Path(model_dir)
    references = tuple(references)
    _check_model_dir_apart(model_dir, volume, init_from, references)
    validate_volume(volume, min_slices=3)
    _check_references(references, config, stages)
    _check_patches(volume, config, stages)
    device = resolve_device(config.device)
    if init_from is not None:  # before the model folder is created
        _check_init(init_from, config)
    artifact = _open_or_create(volume, model_dir, config)
    run = _Run(volume, artifact, artifact.config, device, init=init_from)
    if references:
        artifact.provenance["references"] = {
            "volumes": [f"{r.source} ({'x'.join(map(str, r.shape))})" for r in references],
            "share": config.reference_share,
        }
    planes = tuple(ReferencePlanes.read(r.data) for r in references)  # once for every stage
    ckpt = model_dir / "checkpoints"
    timings: dict = dict(artifact.provenance.get("training_seconds", {}))

    for stage in stages:
        if stage in artifact.stages:
            log.info("stage %s already trained in %s; skipping", stage, model_dir)
            continue
        spec = STAGE_SPECS[stage]
        t0 = time.perf_counter()
        if spec.needs_skeleton and run.skeleton is None:
            run.skeleton = cpu_fast_layout(artifact.load_network("skeleton", device))
        if spec.prerequisite is not None and spec.prerequisite not in artifact.stages:
            raise ConfigError(
                f"The {spec.name} stage needs a trained {spec.prerequisite}; "
                f"add '{spec.prerequisite}' to --stages."
            )
        tc = getattr(run.config, spec.training)
        sampler = _pair_sampler(
            volume.data,
            run.config,
            artifact.normalizer,
            tc.patch_size,
            tc.seed + spec.seed_offset,
            planes if spec.name != "alignment" else (),
        )
        model = spec.make_network(run, tc)
        step_loss = spec.make_step(run, sampler, tc)
        ema = train_stage(spec.task, model, step_loss, tc, ckpt / spec.checkpoint, progress)
        save_weights(ema, artifact.weights_path(spec.network))
        if stage == "skeleton":
            ratio = st.skeleton_error_ratio(sampler, ema, run.config, device)
            artifact.provenance["skeleton_error_vs_cubic"] = round(ratio, 4)
            log.info("skeleton error on training pairs: %.2fx cubic interpolation's", ratio)
        if stage not in artifact.stages:
            artifact.stages.append(stage)
        timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - t0, 2)
        artifact.provenance["training_seconds"] = timings
        artifact.save_manifest()
    return artifact


def _check_model_dir_apart(
    model_dir: Path,
    volume: Volume,
    init_from: ModelArtifact | None,
    references: tuple[Volume, ...] = (),
) -> None:
    """Refuse a model directory that is, lies inside or holds the volume's or a reference's file
    or store, or the starting model (:func:`skelem.io.paths.check_output_apart`), or that is a
    file."""
    inputs = []
    for name, vol in (("input volume", volume), *(("reference volume", r) for r in references)):
        if resolve_uri(vol.source).exists():  # not a description such as "<memory>"
            inputs.append((name, vol.source))
    if init_from is not None:
        inputs.append(("starting model", str(init_from.directory)))
    check_output_apart(model_dir, inputs)
    if model_dir.exists() and not model_dir.is_dir():
        raise ModelError(
            f"{model_dir} is a file, not a model directory; choose an empty or new directory."
        )


def _check_init(init: ModelArtifact, config: ExperimentConfig) -> None:
    """Refuse, in one sentence, a starting model whose networks or factor differ from the config,
    or whose weights files do not match the SHA-256 recorded in its manifest."""
    for section in ("skeleton", "refiner", "diffusion_peer"):
        if getattr(init.config, section) != getattr(config, section):
            raise ModelError(
                f"The starting model {init.directory} has another {section} network than this "
                "configuration; fine-tune with the starting model's network sizes."
            )
    if init.factor != config.degradation.factor:
        raise ModelError(
            f"The starting model {init.directory} was trained for factor {init.factor}, not "
            f"{config.degradation.factor}."
        )
    for network in WEIGHT_FILES:  # damaged or modified weights, in one sentence
        if init.has(network):
            init.checked_weights_path(network)


def _check_patches(volume: Volume, config: ExperimentConfig, stages) -> None:
    """Refuse, before anything is written, a volume too small for any requested stage's patches."""
    d = config.degradation
    for stage in stages:
        spec = STAGE_SPECS[stage]
        patch = getattr(config, spec.training).patch_size
        pair_orientations(
            volume.shape, d.factor, patch, d.profile, d.thickness, d.sigma, stage=spec.patch_label
        )


def _cross_sampler(
    volume: Volume, artifact: ModelArtifact, size: int
) -> st.CrossPlaneSampler | None:
    """The real volume, normalised, for the cross-plane cycles (a bounded central crop)."""
    z, y, x = volume.shape
    cy, cx = min(y, 256), min(x, 256)
    y0, x0 = (y - cy) // 2, (x - cx) // 2
    crop = np.asarray(volume.data[:, y0 : y0 + cy, x0 : x0 + cx])
    try:
        normalized = artifact.normalizer.normalize(crop)
        return st.CrossPlaneSampler(normalized, artifact.factor, size, size)
    except ValueError:
        log.warning("volume too small for the cross-plane alignment cycles; using XY cycles only")
        return None


def _open_or_create(volume: Volume, model_dir: Path, config: ExperimentConfig) -> ModelArtifact:
    """The model directory's artifact: continued when it holds this config's model, else new."""
    if (model_dir / MANIFEST).exists():
        artifact = load_artifact(model_dir)
        if artifact.config.model_dump() != config.model_dump():
            raise ModelError(
                f"{model_dir} holds a model trained with another configuration; choose a new "
                "output directory or pass the same options to continue it."
            )
        if not (model_dir / "config.json").exists():  # a run stopped right after the manifest
            save_config(config, model_dir / "config.json")
        return artifact
    if model_dir.exists() and any(p for p in model_dir.iterdir() if p.name != "checkpoints"):
        raise ModelError(
            f"{model_dir} exists and is not a SkelEM model directory; "
            "choose an empty or new directory."
        )
    normalizer = PercentileNormalizer.fit(volume.data, percentiles=config.percentiles)
    artifact = ModelArtifact(
        model_dir,
        config,
        normalizer,
        [],
        {
            "trained_on": volume.source,
            "shape": list(volume.shape),
            "voxel_size": volume.voxel_size,
            "unit": volume.unit,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )
    artifact.save_manifest()
    save_config(config, model_dir / "config.json")
    return artifact
