"""Pydantic configuration models.

Domain rules fail early with one readable sentence (see :func:`validation_message`).
All lengths are in voxels of the fine (lateral) grid unless stated otherwise.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from skelem.atomic import write_text_atomic
from skelem.errors import ConfigError

CONFIG_VERSION = 1
MAX_FACTOR = 16


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def check_factor(value: float) -> int:
    """Return an integer anisotropy factor, or raise :class:`ConfigError` with one sentence.

    SkelEM supports integer factors 2-16. A non-integer factor (e.g. 2.5) is refused: resample
    the volume along Z to an integer factor first (the measured slices must fall on the output
    grid).

    Parameters
    ----------
    value : float
        The requested factor (anything :func:`float` accepts).

    Returns
    -------
    int
        The factor, rounded to the integer it is within 1e-3 of.

    Raises
    ------
    ConfigError
        ``value`` is not a finite number, is below 2 or above :data:`MAX_FACTOR`, or is not an
        integer.
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"The anisotropy factor must be a number, got {value!r}.") from None
    if not math.isfinite(value):
        raise ConfigError(f"The anisotropy factor must be finite, got {value}.")
    if value < 2 - 1e-6:
        raise ConfigError(
            f"The anisotropy factor must be at least 2 (got {value:g}); a volume with factor "
            "below 2 is already close to isotropic."
        )
    if abs(value - round(value)) > 1e-3:
        raise ConfigError(
            f"Non-integer anisotropy factor {value:g} is not supported; resample the volume "
            f"along Z to an integer factor (e.g. {round(value)}) first."
        )
    if round(value) > MAX_FACTOR:
        raise ConfigError(
            f"The anisotropy factor {value:g} is above the supported maximum of {MAX_FACTOR}."
        )
    return int(round(value))


class DegradationConfig(_Strict):
    """The axial degradation model ``D_s``: slice profile along one axis, then every
    ``factor``-th sample.

    Parameters
    ----------
    factor : int
        Integer anisotropy factor (2-16, see :func:`check_factor`).
    profile : {"none", "box", "gaussian"}
        ``none`` (pure subsampling), ``box`` (section thickness ``thickness`` voxels,
        default = factor), ``gaussian`` (PSF with standard deviation ``sigma`` voxels).
    thickness : float, optional
        Box section thickness in voxels (None: the factor).
    sigma : float, optional
        Standard deviation of the gaussian PSF in voxels (required for ``gaussian``).
    offset : int
        Index of the first kept sample (below ``factor``).
    """

    factor: int = 4
    profile: Literal["none", "box", "gaussian"] = "none"
    thickness: float | None = Field(default=None, gt=0)
    sigma: float | None = Field(default=None, gt=0)
    offset: int = Field(default=0, ge=0)

    @field_validator("factor", mode="before")
    @classmethod
    def _factor(cls, v: object) -> int:
        return check_factor(v)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _profile_params(self) -> DegradationConfig:
        if self.profile == "gaussian" and self.sigma is None:
            raise ValueError("the gaussian profile needs a sigma, e.g. --profile gaussian:1.5")
        if self.offset >= self.factor:
            raise ValueError(f"offset {self.offset} must be smaller than the factor {self.factor}")
        return self

    def profile_string(self) -> str:
        """The profile in the form :func:`parse_profile` reads back.

        Returns
        -------
        str
            ``none``, ``box``, ``box:T`` or ``gaussian:SIGMA``.
        """
        if self.profile == "gaussian":
            return f"gaussian:{self.sigma:g}"
        if self.profile == "box" and self.thickness is not None:
            return f"box:{self.thickness:g}"
        return self.profile


def parse_profile(text: str) -> dict:
    """Parse ``none``, ``box``, ``box:T`` or ``gaussian:SIGMA`` into DegradationConfig fields.

    Parameters
    ----------
    text : str
        The profile, e.g. the value of ``--profile`` (case and surrounding spaces ignored).

    Returns
    -------
    dict
        ``{"profile": name}`` plus ``thickness`` or ``sigma`` when given.

    Raises
    ------
    ConfigError
        Unknown profile name, or a missing, non-numeric or non-positive parameter.
    """
    name, _, arg = text.strip().lower().partition(":")
    if name not in ("none", "box", "gaussian"):
        raise ConfigError(
            f"Unknown slice profile {text!r}; use none, box, box:THICKNESS or gaussian:SIGMA."
        )
    out: dict = {"profile": name}
    if arg:
        try:
            val = float(arg)
        except ValueError:
            raise ConfigError(f"The slice profile parameter in {text!r} is not a number.") from None
        if not val > 0:
            raise ConfigError(f"The slice profile parameter in {text!r} must be positive.")
        if name == "box":
            out["thickness"] = val
        elif name == "gaussian":
            out["sigma"] = val
        else:
            raise ConfigError("The 'none' profile takes no parameter.")
    elif name == "gaussian":
        raise ConfigError("The gaussian profile needs a sigma, e.g. gaussian:1.5.")
    return out


class NetworkConfig(_Strict):
    """A 2-D U-Net: ``channels`` at the first level, doubled at each of ``depth`` downsamplings.

    Parameters
    ----------
    channels : int
        Feature channels at the first level (1-256).
    depth : int
        Number of downsamplings (1-6).
    context : int
        Skeleton only: neighbouring slices on each side given as extra input channels (0-8; a
        2.5-D input, :mod:`skelem.models.context`). Learnt from true Z pairs of isotropic
        reference volumes; a volume's own XY pairs repeat their slice instead.
    """

    channels: int = Field(default=16, ge=1, le=256)
    depth: int = Field(default=3, ge=1, le=6)
    context: int = Field(default=0, ge=0, le=8)

    @property
    def multiple(self) -> int:
        """Spatial sizes fed to the network must be a multiple of this."""
        return 2**self.depth


class DiffusionConfig(_Strict):
    """Noise schedule and truncated sampler.

    Parameters
    ----------
    timesteps : int
        Length of the noise schedule.
    schedule : {"cosine", "linear"}
        Shape of the noise schedule.
    prediction : {"eps", "v"}
        What the denoiser predicts: the noise, or the velocity.
    t0 : int
        First timestep of truncated sampling (below ``timesteps``).
    steps : int
        Reverse steps from ``t0`` to 0 (at most ``t0``).
    prior_attenuation : float
        Scale of the propagated residual prior at the midpoint between measured rows.
    eta : float
        Stochasticity of each sampling move: 0 deterministic DDIM, 1 DDPM variance.
    detail : float
        The fidelity-perception knob, 0 to 1: the sampled residual between the measured rows is
        ``prior + detail * (sample - prior)``, ``prior`` the measured residual propagated
        linearly. 0: the deterministic skeleton + prior (the refiner is not run); 1: the whole
        sampled detail.
    slow_modes : int
        Axial sine modes of the sampled detail removed between every two measured rows before
        ``detail`` scales it (:func:`skelem.diffusion.prior.remove_slow_modes`; 0: none).
    diffusion_peer_steps : int
        Reverse steps of the diffusion peer (method ``diffusion``, sampled from pure noise)
        when no ``steps`` are requested.
    residual_scale : float, optional
        The refiner diffuses residual / residual_scale; None: measured when it is trained.
    """

    timesteps: int = Field(default=1000, ge=10)
    schedule: Literal["cosine", "linear"] = "cosine"
    prediction: Literal["eps", "v"] = "v"
    t0: int = Field(default=400, ge=1, description="first timestep of truncated sampling")
    steps: int = Field(default=2, ge=1, description="reverse steps from t0 to 0")
    prior_attenuation: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="scale of the propagated residual prior at the midpoint between measured rows",
    )
    eta: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="stochasticity of each sampling move: 0 deterministic DDIM, 1 DDPM variance",
    )
    detail: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="fidelity-perception knob: share of the sampled detail kept between the "
        "measured rows (0 deterministic skeleton + measured residual prior, 1 all of it)",
    )
    slow_modes: int = Field(
        default=0,
        ge=0,
        description="axial sine modes of the sampled detail removed between every two measured "
        "rows before `detail` scales it (0: none)",
    )
    diffusion_peer_steps: int = Field(default=50, ge=1)
    residual_scale: float | None = Field(
        default=None,
        gt=0,
        description="the refiner diffuses residual / residual_scale; None: the residual's RMS "
        "measured on the training pairs when the refiner is trained (so the start noise at t0 "
        "does not drown the residual prior)",
    )

    @model_validator(mode="after")
    def _t0(self) -> DiffusionConfig:
        if self.t0 >= self.timesteps:
            raise ValueError(
                f"t0 ({self.t0}) must be below the number of timesteps ({self.timesteps})"
            )
        if self.steps > self.t0:
            raise ValueError(f"steps ({self.steps}) cannot exceed t0 ({self.t0})")
        return self


class TrainingConfig(_Strict):
    """One training stage.

    Parameters
    ----------
    iterations : int
        Optimiser steps.
    batch_size : int
        Patches per step.
    patch_size : int
        Side of the square training patches (a multiple of the U-Net's ``multiple``).
    learning_rate : float
        Optimiser learning rate.
    ema_decay : float
        Decay of the exponential moving average of the weights.
    checkpoint_every : int
        Steps between checkpoints.
    seed : int
        Seed of the stage's random streams.
    """

    iterations: int = Field(default=2000, ge=1)
    batch_size: int = Field(default=8, ge=1)
    patch_size: int = Field(default=128, ge=16)
    learning_rate: float = Field(default=2e-3, gt=0)
    ema_decay: float = Field(default=0.995, ge=0.0, lt=1.0)
    checkpoint_every: int = Field(default=200, ge=1)
    seed: int = 0


class AlignmentConfig(_Strict):
    """Weights of the alignment loss terms (Stage 3.3); each can be set to 0 to ablate it.

    Parameters
    ----------
    hr_weight : float
        HR->LR->HR cycle on real XY patches.
    lr_weight : float
        LR->HR->LR cycle on real XZ/YZ slices.
    agree_weight : float
        Agreement of the XZ-pass and the YZ-pass.
    anchor_weight : float
        The refiner's own denoising loss on XY pairs, kept during alignment.
    texture_weight : float
        Texture statistics: the per-row lateral and per-column axial gradient energies of the
        HR->LR->HR output against the real patch's, and on real cross-plane sub-volumes the
        lateral gradient energy of every restored row between the acquired ones against the
        acquired rows' own (Z texture stationarity). 0: no texture term.
    structure_sigma : float
        The HR->LR->HR cycle and the XZ/YZ agreement compare images blurred by a Gaussian of this
        standard deviation (pixels), so they constrain structure and leave texture to
        ``texture_weight``; 0 compares the raw images (L1 then pulls the refiner to the mean).
    """

    hr_weight: float = Field(default=1.0, ge=0.0, description="HR->LR->HR cycle on real XY patches")
    lr_weight: float = Field(
        default=1.0, ge=0.0, description="LR->HR->LR cycle on real XZ/YZ slices"
    )
    agree_weight: float = Field(
        default=0.5, ge=0.0, description="agreement of the XZ-pass and the YZ-pass"
    )
    anchor_weight: float = Field(
        default=0.1,
        ge=0.0,
        description="the refiner's own denoising loss on XY pairs, kept during alignment so it "
        "stays a denoiser (0: the cycles alone pull it towards a second regression and its "
        "texture is lost)",
    )
    texture_weight: float = Field(
        default=0.2,
        ge=0.0,
        description="texture statistics (row and column gradient energies against the real "
        "patch's; between-row against acquired-row energy on real sub-volumes)",
    )
    structure_sigma: float = Field(
        default=1.0,
        ge=0.0,
        description="Gaussian blur (pixels) before the HR cycle and XZ/YZ agreement L1 terms, so "
        "they constrain structure, not texture (0: raw L1)",
    )


class ExperimentConfig(_Strict):
    """Everything that says how a model (and each output) was made. Saved with every artifact.

    Parameters
    ----------
    version : int
        Config format version (at most :data:`CONFIG_VERSION`).
    degradation : DegradationConfig
        The axial degradation model.
    skeleton, refiner, diffusion_peer : NetworkConfig
        The three U-Nets.
    diffusion : DiffusionConfig
        Noise schedule and sampler.
    skeleton_training, refiner_training, alignment_training : TrainingConfig
        The training stages (the diffusion peer trains with ``refiner_training``).
    skeleton_loss : {"mse_ssim", "l1_ssim", "mse"}
        Loss of the skeleton stage.
    alignment : AlignmentConfig
        Weights of the alignment loss terms.
    reference_share : float
        With isotropic reference volumes, the share of every pair batch drawn from their true Z
        pairs (the rest from the volume's XY pairs).
    percentiles : tuple of 2 float
        Intensity percentiles of the normalisation.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    """

    version: int = CONFIG_VERSION
    degradation: DegradationConfig = DegradationConfig()
    skeleton: NetworkConfig = NetworkConfig(channels=16, depth=3)
    refiner: NetworkConfig = NetworkConfig(channels=16, depth=3)
    diffusion_peer: NetworkConfig = NetworkConfig(channels=16, depth=3)
    diffusion: DiffusionConfig = DiffusionConfig()
    # learning rate 1e-3, not 2e-3: at 2e-3 the x8 skeleton of some seeds, and wider or deeper
    # skeletons, collapse to the identity correction (output = cubic); 1e-3 trains them all and
    # is as good on average (benchmarks/RESULTS.md, "Skeleton levers, fourth round")
    skeleton_training: TrainingConfig = TrainingConfig(
        iterations=1500, patch_size=64, learning_rate=1e-3
    )
    skeleton_loss: Literal["mse_ssim", "l1_ssim", "mse"] = Field(
        default="mse_ssim",
        description="10*MSE + 0.2*(1-SSIM) (default), or L1 + 0.2*(1-SSIM) (collapsed to cubic "
        "at x8, kept for comparison), or 10*MSE alone",
    )
    refiner_training: TrainingConfig = TrainingConfig(
        iterations=1500, patch_size=64, learning_rate=1e-3
    )
    alignment_training: TrainingConfig = TrainingConfig(
        iterations=150, batch_size=4, patch_size=64, learning_rate=2e-4, checkpoint_every=25
    )
    alignment: AlignmentConfig = AlignmentConfig()
    # 1.0: with isotropic references, pairs come from their XZ/YZ planes alone (on FIB-SEM,
    # true Z pairs beat XY pairs by 0.05-0.18 dB and a half-and-half mix, benchmarks/RESULTS.md)
    reference_share: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="share of every training batch drawn from the isotropic reference volumes' "
        "true Z pairs when references are given (train_model(references=...), skelem train "
        "--reference); the rest from the volume's own XY pairs",
    )
    percentiles: tuple[float, float] = (0.5, 99.5)
    device: str = "auto"

    @model_validator(mode="before")
    @classmethod
    def _drop_inference(cls, data: object) -> object:
        """Manifests written before :class:`skelem.config.restore.RestoreOptions` hold an
        ``inference`` section that restore never read (its block and fuse were not restore's):
        it is dropped, so those models still load."""
        if isinstance(data, dict) and "inference" in data:
            return {key: value for key, value in data.items() if key != "inference"}
        return data

    @model_validator(mode="before")
    @classmethod
    def _sections_over_defaults(cls, data: object) -> object:
        """A section given in part keeps this configuration's defaults for the rest:
        ``{"alignment_training": {"iterations": 300}}`` is the default alignment stage (learning
        rate 2e-4, batch 4, 64^2 patches) with 300 iterations, not a generic stage's defaults."""
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for name, field in cls.model_fields.items():
            value = data.get(name)
            default = field.default
            if isinstance(value, dict) and isinstance(default, BaseModel):
                merged[name] = {**default.model_dump(), **value}
        return merged

    @field_validator("version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v > CONFIG_VERSION:
            raise ValueError(
                f"config version {v} is newer than this SkelEM understands ({CONFIG_VERSION})"
            )
        return v

    @model_validator(mode="after")
    def _context_is_the_skeletons(self) -> ExperimentConfig:
        for name in ("refiner", "diffusion_peer"):
            if getattr(self, name).context:
                raise ValueError(
                    f"only the skeleton takes neighbouring slices; {name}.context must be 0"
                )
        return self

    @model_validator(mode="after")
    def _patches(self) -> ExperimentConfig:
        for name, net, train in (
            ("skeleton", self.skeleton, self.skeleton_training),
            ("refiner", self.refiner, self.refiner_training),
            ("diffusion_peer", self.diffusion_peer, self.refiner_training),
        ):
            if train.patch_size % net.multiple:
                raise ValueError(
                    f"the {name} training patch size {train.patch_size} must be a multiple of "
                    f"{net.multiple} (2**depth of the {name} U-Net)"
                )
        return self


def validation_message(err: ValidationError) -> str:
    """Turn a pydantic error into one sentence.

    Parameters
    ----------
    err : pydantic.ValidationError
        The error; only its first problem is reported.

    Returns
    -------
    str
        The :class:`ConfigError` message when a validator raised one, else
        ``"Invalid configuration at <field>: <problem>."``.
    """
    first = err.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if isinstance(first.get("ctx", {}).get("error"), ConfigError):
        return str(first["ctx"]["error"])
    return f"Invalid configuration{' at ' + where if where else ''}: {msg}."


#: From this factor on, a new configuration samples SkelEM's detail with
#: :data:`LARGE_FACTOR_SAMPLING` (unless it sets those keys itself): with seven or more rows between
#: measured ones the detail's slowest axial modes cost fidelity and add little texture, so two are
#: removed and more of the rest kept. Chosen on t2's tuning half, for the pretrained x8 model and
#: for models trained on the volume alone, and checked once on the scored half (same PSNR, more
#: texture, lower KID and LSD; benchmarks/RESULTS.md, "Slow modes of the sampled detail").
LARGE_FACTOR = 8
LARGE_FACTOR_SAMPLING: dict[str, float | int] = {"detail": 0.85, "slow_modes": 2}


def sampling_defaults(factor: int) -> dict[str, float | int]:
    """The ``diffusion`` sampling values a new configuration at ``factor`` starts from.

    Only new configurations (``skelem train``, the benchmark's budgets, napari's training) take
    them; a saved model's configuration keeps what it was saved with.

    Parameters
    ----------
    factor : int
        The anisotropy factor.

    Returns
    -------
    dict
        :data:`LARGE_FACTOR_SAMPLING` from :data:`LARGE_FACTOR` on, else empty (the
        :class:`DiffusionConfig` defaults stand).
    """
    return dict(LARGE_FACTOR_SAMPLING) if factor >= LARGE_FACTOR else {}


def build_config(data: dict | None = None, **overrides: object) -> ExperimentConfig:
    """Validate a (nested) dict into an :class:`ExperimentConfig`, raising :class:`ConfigError`.

    Parameters
    ----------
    data : dict, optional
        The (nested) config values.
    **overrides : object
        Top-level fields that replace those of ``data``.

    Returns
    -------
    ExperimentConfig
    """
    try:
        return ExperimentConfig.model_validate({**(data or {}), **overrides})
    except ValidationError as err:
        raise ConfigError(validation_message(err)) from None


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the config as JSON, atomically (:func:`skelem.atomic.write_text_atomic`).

    Parameters
    ----------
    config : ExperimentConfig
        The configuration to save.
    path : str or Path
        Destination file; replaced when it exists.
    """
    write_text_atomic(path, json.dumps(config.model_dump(mode="json"), indent=2))


def load_config(path: str | Path) -> ExperimentConfig:
    """Read a JSON config file (e.g. ``--config FILE``), raising :class:`ConfigError`.

    Parameters
    ----------
    path : str or Path
        The JSON file.

    Returns
    -------
    ExperimentConfig
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist.") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"Config file {path} is not readable JSON ({err.__class__.__name__})."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a JSON object.")
    return build_config(data)


def build_sub_config(model: type[BaseModel], **values: object) -> BaseModel:
    """Validate one sub-config (e.g. :class:`DegradationConfig`), raising :class:`ConfigError`.

    Parameters
    ----------
    model : type of pydantic.BaseModel
        The sub-config class.
    **values : object
        Its field values.

    Returns
    -------
    pydantic.BaseModel
        An instance of ``model``.
    """
    try:
        return model.model_validate(values)
    except ValidationError as err:
        raise ConfigError(validation_message(err)) from None
