"""How to restore a volume: one validated model of the restore options.

The ``skelem restore`` command, the Python API (:func:`skelem.inference.restore.restore_volume`,
:func:`~skelem.inference.restore.restore_to_file`) and the benchmark's method specs all build a
:class:`RestoreOptions`. Its validators hold every rule that needs no model; the rules that need
the model's noise schedule are :func:`check_sampling`, called once the model is known.
"""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from skelem.config.choices import (
    BACKENDS,
    INTERPOLATION_METHODS,
    METHODS,
    NETWORK_METHODS,
    RESTORE_DEFAULTS,
    Fuse,
    Method,
    Normalize,
    OutputDtype,
    Planes,
)
from skelem.config.models import DiffusionConfig
from skelem.errors import ConfigError

# field: (its Literal's values, "Unknown <what> <value>; <hint>." for a value outside them)
_CHOICES = {
    "method": (METHODS, "method", "choose one of " + ", ".join(METHODS)),
    "planes": (get_args(Planes), "planes", "choose one of " + ", ".join(get_args(Planes))),
    "fuse": (get_args(Fuse), "fusion", "choose one of " + ", ".join(get_args(Fuse))),
    "normalize": (get_args(Normalize), "normalisation", "use model or input"),
    "dtype": (get_args(OutputDtype), "output dtype", "use input or float32"),
    "backend": (BACKENDS, "backend", "choose one of " + ", ".join(BACKENDS)),
}
__all__ = [
    "INTERPOLATION_METHODS",
    "METHODS",
    "NETWORK_METHODS",
    "RestoreOptions",
    "check_sampling",
]
# "--<flag> must be at least 1." for a count below 1
_AT_LEAST_ONE = {"samples": "--samples", "steps": "--steps", "batch_size": "--batch-size"}


class RestoreOptions(BaseModel):
    """How to restore; ``None`` values follow the model's config.

    Parameters
    ----------
    method : {"skelem", "skeleton", "diffusion", "cubic", "linear", "nearest"}, optional
        None: ``skelem`` when the model has a refiner, else ``skeleton``; ``cubic`` without a model.
    samples : int
        K > 1: the mean of K seeds (``seed``, ``seed + 1``, ...) and its per-voxel std.
    steps, t0 : int, optional
        Reverse diffusion steps and the start timestep of truncated sampling (skelem).
    batch_size : int
        Slices per network call at most.
    block_shape : tuple of 3 int, optional
        Output block ``(z, y, x)`` of tiled processing (default: by output size and kind).
    planes : {"both", "xz", "yz"}
        Restore along both cross-planes and fuse them, or along one only.
    fuse : {"end", "steps"}
        SkelEM with both planes: average the passes at the end, or after every sampling step.
    seed : int
        Seed of the coordinate-keyed noise.
    use_prior, use_consistency, aligned : bool
        Ablation switches: the measured residual prior, the measured rows enforced after every
        step, the refiner after (True) or before (False) the alignment stage.
    normalize : {"model", "input"}
        The model's training intensity statistics, or the input's own percentiles.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    dtype : {"input", "float32"}
        Data type of a written output.
    eta : float, optional
        Stochasticity of the sampling moves (skelem, diffusion): 0 deterministic DDIM (the
        fidelity end), 1 the DDPM posterior variance (the perception end); None: the model's
        ``diffusion.eta``.
    detail : float, optional
        SkelEM's fidelity-perception knob, 0 (deterministic: skeleton + measured residual
        prior) to 1 (all the sampled detail); None: the model's ``diffusion.detail``.
    slow_modes : int, optional
        SkelEM: the axial sine modes of the sampled detail removed between every two measured
        slices before ``detail`` scales it (0: none). Its slow part costs fidelity and adds
        little texture (``benchmarks/probes/detail_filter.py``). None: the model's
        ``diffusion.slow_modes``.
    tta : bool
        Test-time augmentation of the skeleton (mean over the 4 flips of each slice that keep
        the axial direction; 4 skeleton passes).
    backend : {"torch", "torch-nchw", "onnxruntime"}
        How the networks run: PyTorch in channels_last layout (default), PyTorch in the plain
        layout, or ONNX Runtime's CPU provider (needs ``pip install onnxruntime onnx``).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    method: Method | None = None
    samples: int = RESTORE_DEFAULTS["samples"]  # type: ignore[assignment]
    steps: int | None = None
    t0: int | None = None
    batch_size: int = RESTORE_DEFAULTS["batch_size"]  # type: ignore[assignment]
    block_shape: tuple[int, int, int] | None = None
    planes: Planes = RESTORE_DEFAULTS["planes"]  # type: ignore[assignment]
    fuse: Fuse = RESTORE_DEFAULTS["fuse"]  # type: ignore[assignment]
    seed: int = RESTORE_DEFAULTS["seed"]  # type: ignore[assignment]
    use_prior: bool = True
    use_consistency: bool = True
    aligned: bool = True
    normalize: Normalize = RESTORE_DEFAULTS["normalize"]  # type: ignore[assignment]
    device: str = RESTORE_DEFAULTS["device"]  # type: ignore[assignment]
    dtype: OutputDtype = RESTORE_DEFAULTS["dtype"]  # type: ignore[assignment]
    eta: float | None = None
    detail: float | None = None
    slow_modes: int | None = None
    tta: bool = RESTORE_DEFAULTS["tta"]  # type: ignore[assignment]
    backend: str = RESTORE_DEFAULTS["backend"]  # type: ignore[assignment]

    @field_validator("method", "planes", "fuse", "normalize", "dtype", "backend", mode="before")
    @classmethod
    def _known(cls, value: object, info: ValidationInfo) -> object:
        allowed, what, hint = _CHOICES[info.field_name]
        if value is not None and value not in allowed:
            raise ConfigError(f"Unknown {what} {value!r}; {hint}.")
        return value

    @field_validator("slow_modes")
    @classmethod
    def _not_negative(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ConfigError(f"--slow-modes must be 0 or more, got {value}.")
        return value

    @field_validator("samples", "steps", "batch_size")
    @classmethod
    def _at_least_one(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value < 1:
            raise ConfigError(f"{_AT_LEAST_ONE[info.field_name]} must be at least 1.")
        return value

    @field_validator("eta", "detail")
    @classmethod
    def _unit(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"--{info.field_name} must be between 0 and 1, got {value:g}.")
        return value

    @field_validator("block_shape")
    @classmethod
    def _block(cls, value: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if value is not None and min(value) < 1:
            raise ConfigError(f"--block must be three positive numbers Z,Y,X, got {value}.")
        return value

    @property
    def joint(self) -> bool:
        """Both passes of SkelEM sampled jointly (``planes="both"`` and ``fuse="steps"``)."""
        return self.method == "skelem" and self.planes == "both" and self.fuse == "steps"


def check_sampling(options: RestoreOptions, method: str, diffusion: DiffusionConfig) -> None:
    """Refuse ``steps``/``t0`` the model's noise schedule cannot follow, and ``detail`` or
    ``slow_modes`` with the joint sampler (which does not apply them), before any work.

    Parameters
    ----------
    options : RestoreOptions
        The requested options (``steps`` and ``t0`` are checked when given).
    method : str
        The method that will run (``options.method`` or the model's default).
    diffusion : DiffusionConfig
        The model's schedule and sampler defaults.

    Raises
    ------
    ConfigError
        With one sentence naming the flag.
    """
    joint = method == "skelem" and options.planes == "both" and options.fuse == "steps"
    if joint and (options.detail is not None or options.slow_modes is not None):
        flag = "--detail" if options.detail is not None else "--slow-modes"
        raise ConfigError(
            f"{flag} applies to the default fusion (--fuse end); --fuse steps samples the "
            "passes jointly and keeps all their detail."
        )
    steps, t0 = options.steps, options.t0
    if steps is None and t0 is None:
        return
    if method == "diffusion" and steps is not None and steps > diffusion.timesteps:
        raise ConfigError(
            f"--steps {steps} exceeds the model's {diffusion.timesteps} diffusion timesteps."
        )
    if method != "skelem":
        return
    start = t0 if t0 is not None else diffusion.t0
    if not 1 <= start < diffusion.timesteps:
        raise ConfigError(
            f"--t0 must be between 1 and {diffusion.timesteps - 1} for this model, got {start}."
        )
    count = steps if steps is not None else diffusion.steps
    if count > start:
        raise ConfigError(f"--steps ({count}) cannot exceed --t0 ({start}).")
