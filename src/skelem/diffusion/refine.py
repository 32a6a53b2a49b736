"""The refiner's truncated, consistency-constrained reverse diffusion of the residual.

Shared by restoration (:mod:`skelem.inference.engine`) and the alignment stage
(:mod:`skelem.training.stages`), which back-propagates through it. Networks are passed in; nothing
here loads or builds one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from skelem.diffusion.prior import apply_consistency, propagate_residual, remove_slow_modes
from skelem.diffusion.sampler import StepNoise, ddim_sample, start_from
from skelem.diffusion.schedule import NoiseSchedule, Prediction


@dataclass(frozen=True)
class RefineSettings:
    """How the residual is sampled.

    Parameters
    ----------
    schedule : NoiseSchedule
        The noise schedule the refiner was trained with.
    timesteps : list of int
        The explicit, strictly decreasing timestep list from ``t0`` to 0.
    prediction : {"eps", "v"}
        The refiner's output parameterisation.
    residual_scale : float
        The refiner works on ``residual / residual_scale`` (the scale it was trained with).
    use_prior : bool
        Start from the propagated measured residual (else from zero plus noise).
    use_consistency : bool
        Replace the measured rows of every clean estimate by the measured residual.
    prior_attenuation : float
        Scale of the propagated prior at the midpoint between measured rows.
    eta : float
        Stochasticity of every sampling move (0: deterministic DDIM; 1: DDPM variance).
    detail : float
        Share of the sampled residual's departure from the linearly propagated measured residual
        that is kept (0 to 1; the fidelity-perception knob).
    slow_modes : int
        Axial sine modes of that departure removed between every two measured rows before it is
        scaled by ``detail`` (0: none; see :func:`~skelem.diffusion.prior.remove_slow_modes`):
        the slow part of the sampled detail costs fidelity and adds little texture.
    """

    schedule: NoiseSchedule
    timesteps: list[int]
    prediction: Prediction = "v"
    residual_scale: float = 1.0
    use_prior: bool = True
    use_consistency: bool = True
    prior_attenuation: float = 1.0
    eta: float = 0.0
    detail: float = 1.0
    slow_modes: int = 0


def residual_start(
    u: Tensor, skel: Tensor, row_mask: Tensor, noise: Tensor, settings: RefineSettings
) -> tuple[Tensor, Tensor]:
    """The scaled residual on the measured rows and the start state ``x_t0`` from its prior.

    Parameters
    ----------
    u, skel : Tensor
        Interpolated slices and the skeleton's output, ``(B, 1, H, W)``, normalised units.
    row_mask : Tensor
        Boolean ``(1, 1, H, 1)`` mask of measured rows.
    noise : Tensor
        Standard normal noise shaped like ``u``.
    settings : RefineSettings

    Returns
    -------
    measured : Tensor
        ``(u - skel) / residual_scale`` on measured rows, zero elsewhere, ``(B, 1, H, W)``.
    x_start : Tensor
        ``x_t0`` for the first entry of ``settings.timesteps``.
    """
    measured = torch.where(row_mask, (u - skel) / settings.residual_scale, torch.zeros_like(u))
    if settings.use_prior and bool(row_mask.any()):
        prior = propagate_residual(measured, row_mask, settings.prior_attenuation)
    else:
        prior = torch.zeros_like(u)
    return measured, start_from(prior, noise, settings.timesteps[0], settings.schedule)


def refine_residual(
    refiner: torch.nn.Module,
    u: Tensor,
    skel: Tensor,
    mask: Tensor,
    noise: Tensor,
    settings: RefineSettings,
    step_noise: StepNoise | None = None,
) -> Tensor:
    """Sample the residual to add to the skeleton (differentiable; no ``no_grad`` inside).

    Parameters
    ----------
    refiner : torch.nn.Module
        ``refiner(cat([x_t, skel, u]), t)``, output in ``settings.prediction``.
    u, skel : Tensor
        ``(B, 1, H, W)`` interpolated slices and skeleton output.
    mask : Tensor
        Boolean ``(H,)`` mask of measured rows.
    noise : Tensor
        Standard normal noise shaped like ``u`` (coordinate-seeded at inference).
    settings : RefineSettings
        Sampling settings.
    step_noise : callable, optional
        ``step_noise(i)``: fresh noise of move ``i`` when ``settings.eta > 0``.

    Returns
    -------
    Tensor
        The residual ``x_0 * residual_scale``, ``(B, 1, H, W)``, normalised intensity units.
    """
    row_mask = mask.view(1, 1, -1, 1)
    measured, x_start = residual_start(u, skel, row_mask, noise, settings)
    has_rows = bool(mask.any())
    if settings.detail <= 0 and has_rows:  # the fidelity end: no sampling at all
        return propagate_residual(measured, row_mask) * settings.residual_scale
    cond = torch.cat([skel, u], dim=1)

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        return refiner(torch.cat([x, cond], dim=1), t)

    consistency = None
    if settings.use_consistency and bool(mask.any()):

        def consistency(x0: Tensor) -> Tensor:
            return apply_consistency(x0, measured, row_mask)

    x0 = ddim_sample(
        denoise,
        x_start,
        settings.timesteps,
        settings.schedule,
        settings.prediction,
        consistency=consistency,
        eta=settings.eta,
        step_noise=step_noise,
    )
    if (settings.detail < 1 or settings.slow_modes > 0) and has_rows:
        linear = propagate_residual(measured, row_mask)
        departure = remove_slow_modes(x0 - linear, mask, settings.slow_modes)
        x0 = linear + settings.detail * departure
    residual = x0 * settings.residual_scale
    if consistency is not None:  # exactly the measured residual, not its scaled round trip
        residual = torch.where(row_mask, u - skel, residual)
    return residual
