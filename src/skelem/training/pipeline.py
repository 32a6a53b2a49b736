"""``train_model``: skeleton -> refiner -> alignment (and the pure-diffusion peer) on one volume.

Each stage writes a resumable checkpoint in ``MODEL_DIR/checkpoints`` while it runs and, when it
finishes, its slim weights and an updated manifest. Running the same command again skips finished
stages and continues an interrupted one from its last checkpoint.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from skelem.config.models import ExperimentConfig, save_config
from skelem.data.normalize import PercentileNormalizer
from skelem.data.pairs import PairSampler, pair_orientations
from skelem.errors import ConfigError, ModelError
from skelem.events import ProgressCallback, no_progress
from skelem.io import Volume
from skelem.io.validate import validate_volume
from skelem.models.artifact import MANIFEST, ModelArtifact, load_artifact
from skelem.models.device import resolve_device
from skelem.models.factory import build_diffusion_peer, build_refiner, build_skeleton, save_weights
from skelem.training import stages as st
from skelem.training.loop import train_stage

log = logging.getLogger(__name__)

STAGES = ("skeleton", "refiner", "alignment", "diffusion_peer")
DEFAULT_STAGES = ("skeleton", "refiner", "alignment")


def parse_stages(text: str) -> list[str]:
    """``"skeleton,refiner"`` / ``"all"`` -> ordered stage names."""
    if text.strip() == "all":
        return list(STAGES)
    names = [s.strip().replace("-", "_") for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in STAGES]
    if unknown or not names:
        raise ConfigError(f"Unknown stage {unknown[0] if unknown else text!r}; choose from {', '.join(STAGES)} or all.")
    return [s for s in STAGES if s in names]


def _pair_sampler(data, cfg: ExperimentConfig, normalizer: PercentileNormalizer, patch: int, seed: int) -> PairSampler:
    d = cfg.degradation
    return PairSampler(data, d.factor, profile=d.profile, thickness=d.thickness, sigma=d.sigma,
                       patch_size=patch, normalizer=normalizer, seed=seed)


def train_model(
    volume: Volume,
    model_dir: str | Path,
    config: ExperimentConfig,
    stages: list[str] | tuple[str, ...] = DEFAULT_STAGES,
    progress: ProgressCallback = no_progress,
) -> ModelArtifact:
    """Train the requested stages on ``volume`` (anisotropic, ``(Z, Y, X)``) into ``model_dir``.

    The skeleton is trained first and frozen; the refiner, peer and alignment stages need it.
    Returns the model artifact. Raises :class:`ModelError` when ``model_dir`` holds a model made with
    another configuration.
    """
    model_dir = Path(model_dir)
    validate_volume(volume, min_slices=3)
    _check_patches(volume, config, stages)
    device = resolve_device(config.device)
    artifact = _open_or_create(volume, model_dir, config)
    config = artifact.config
    ckpt = model_dir / "checkpoints"
    data = volume.data
    timings: dict = dict(artifact.provenance.get("training_seconds", {}))

    def finish(stage: str, network: str | None, model: torch.nn.Module | None, seconds: float) -> None:
        if model is not None and network is not None:
            save_weights(model, artifact.weights_path(network))
        if stage not in artifact.stages:
            artifact.stages.append(stage)
        timings[stage] = round(timings.get(stage, 0.0) + seconds, 2)
        artifact.provenance["training_seconds"] = timings
        artifact.save_manifest()

    skeleton = None
    for stage in stages:
        if stage in artifact.stages:
            log.info("stage %s already trained in %s; skipping", stage, model_dir)
            continue
        t0 = time.perf_counter()
        if stage == "skeleton":
            tc = config.skeleton_training
            sampler = _pair_sampler(data, config, artifact.normalizer, tc.patch_size, tc.seed)
            torch.manual_seed(tc.seed)
            model = build_skeleton(config.skeleton).to(device)
            ema = train_stage("train-skeleton", model, st.skeleton_step(sampler, config, device), tc, ckpt / "skeleton.pt", progress)
            finish(stage, "skeleton", ema, time.perf_counter() - t0)
            continue
        skeleton = skeleton or artifact.load_network("skeleton", device)
        if stage == "refiner":
            tc = config.refiner_training
            sampler = _pair_sampler(data, config, artifact.normalizer, tc.patch_size, tc.seed)
            torch.manual_seed(tc.seed)
            model = build_refiner(config.refiner).to(device)
            scale = config.diffusion.residual_scale or st.residual_rms(sampler, skeleton, config, device)
            artifact.residual_scale = scale
            log.info("refiner residual scale %.4f", scale)
            ema = train_stage("train-refiner", model, st.refiner_step(sampler, skeleton, config, device, scale), tc, ckpt / "refiner.pt", progress)
            finish(stage, "refiner", ema, time.perf_counter() - t0)
        elif stage == "diffusion_peer":
            tc = config.refiner_training
            sampler = _pair_sampler(data, config, artifact.normalizer, tc.patch_size, tc.seed + 1)
            torch.manual_seed(tc.seed + 1)
            model = build_diffusion_peer(config.diffusion_peer).to(device)
            ema = train_stage("train-diffusion-peer", model, st.peer_step(sampler, config, device), tc, ckpt / "diffusion_peer.pt", progress)
            finish(stage, "diffusion_peer", ema, time.perf_counter() - t0)
        elif stage == "alignment":
            if "refiner" not in artifact.stages:
                raise ConfigError("The alignment stage needs a trained refiner; add 'refiner' to --stages.")
            tc = config.alignment_training
            sampler = _pair_sampler(data, config, artifact.normalizer, tc.patch_size, tc.seed + 2)
            cross = _cross_sampler(volume, artifact, tc.patch_size // 2)
            unaligned = artifact.weights_path("refiner_unaligned")
            if not unaligned.exists():
                shutil.copyfile(artifact.weights_path("refiner"), unaligned)
            model = artifact.load_network("refiner", device)
            for p in model.parameters():
                p.requires_grad_(True)
            ema = train_stage("align-refiner", model, st.alignment_step(sampler, cross, skeleton, config, device, artifact.residual_scale), tc, ckpt / "alignment.pt", progress)
            finish(stage, "refiner", ema, time.perf_counter() - t0)
    return artifact


def _check_patches(volume: Volume, config: ExperimentConfig, stages) -> None:
    """Refuse, before anything is written, a volume too small for any requested stage's patches."""
    d = config.degradation
    patches = {
        "skeleton": ("skeleton training", config.skeleton_training.patch_size),
        "refiner": ("refiner training", config.refiner_training.patch_size),
        "diffusion_peer": ("diffusion-peer training", config.refiner_training.patch_size),
        "alignment": ("alignment", config.alignment_training.patch_size),
    }
    for stage in stages:
        what, patch = patches[stage]
        pair_orientations(volume.shape, d.factor, patch, d.profile, d.thickness, d.sigma, stage=what)


def _cross_sampler(volume: Volume, artifact: ModelArtifact, size: int) -> st.CrossPlaneSampler | None:
    """The real volume, normalised, for the cross-plane cycles (a bounded central crop)."""
    z, y, x = volume.shape
    cy, cx = min(y, 256), min(x, 256)
    y0, x0 = (y - cy) // 2, (x - cx) // 2
    crop = np.asarray(volume.data[:, y0 : y0 + cy, x0 : x0 + cx])
    try:
        return st.CrossPlaneSampler(artifact.normalizer.normalize(crop), artifact.factor, size, size)
    except ValueError:
        log.warning("volume too small for the cross-plane alignment cycles; using XY cycles only")
        return None


def _open_or_create(volume: Volume, model_dir: Path, config: ExperimentConfig) -> ModelArtifact:
    if (model_dir / MANIFEST).exists():
        artifact = load_artifact(model_dir)
        if artifact.config.model_dump() != config.model_dump():
            raise ModelError(
                f"{model_dir} holds a model trained with another configuration; choose a new "
                "output directory or pass the same options to continue it."
            )
        return artifact
    if model_dir.exists() and any(p for p in model_dir.iterdir() if p.name != "checkpoints"):
        raise ModelError(f"{model_dir} exists and is not a SkelEM model directory; choose an empty or new directory.")
    normalizer = PercentileNormalizer.fit(volume.data, percentiles=config.percentiles)
    artifact = ModelArtifact(
        model_dir, config, normalizer, [],
        {"trained_on": volume.source, "shape": list(volume.shape), "voxel_size": volume.voxel_size,
         "unit": volume.unit, "created": time.strftime("%Y-%m-%dT%H:%M:%S")},
    )
    artifact.save_manifest()
    save_config(config, model_dir / "config.json")
    return artifact
