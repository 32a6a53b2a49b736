"""Truncated reverse diffusion (DDIM, deterministic or with eta > 0) with optional data consistency.

The sampler knows nothing of networks: it takes a ``denoise(x_t, t)`` callable returning the
network output in the schedule's parameterisation. It is differentiable (no ``no_grad`` inside),
so Stage 3 can back-propagate through the few steps; callers wrap it in ``torch.no_grad()`` for
inference.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence

import torch
from torch import Tensor

from skelem.diffusion.schedule import NoiseSchedule, Prediction


def start_from(x_prior: Tensor, noise: Tensor, t0: int, schedule: NoiseSchedule) -> Tensor:
    """The truncated starting point ``x_t0 = sqrt(abar(t0)) * prior + sqrt(1 - abar(t0)) * noise``.

    Parameters
    ----------
    x_prior : Tensor
        The prior clean estimate ``(B, C, H, W)``.
    noise : Tensor
        Standard normal noise shaped like ``x_prior``.
    t0 : int
        Start timestep.
    schedule : NoiseSchedule
        The noise schedule.

    Returns
    -------
    Tensor
        ``x_t0``, shaped like ``x_prior``.
    """
    return schedule.q_sample(x_prior, t0, noise)


def _check_timesteps(timesteps: Sequence[int], schedule: NoiseSchedule) -> list[int]:
    steps = [int(t) for t in timesteps]
    if len(steps) < 2:
        raise ValueError("the timestep list needs at least two entries (t0 and 0)")
    if any(a <= b for a, b in zip(steps, steps[1:], strict=False)):
        raise ValueError(f"the timestep list must be strictly decreasing, got {steps}")
    if steps[-1] != 0:
        raise ValueError(f"the timestep list must end at 0, got {steps}")
    if steps[0] > schedule.timesteps:
        raise ValueError(f"timestep {steps[0]} exceeds the schedule's {schedule.timesteps} steps")
    return steps


StepHook = Callable[[int, int, Tensor], Tensor]
StepNoise = Callable[[int], Tensor]


def ddim_sample(
    denoise: Callable[[Tensor, Tensor], Tensor],
    x_start: Tensor,
    timesteps: Sequence[int],
    schedule: NoiseSchedule,
    prediction: Prediction = "v",
    consistency: Callable[[Tensor], Tensor] | None = None,
    clip_x0: float | None = None,
    on_step: StepHook | None = None,
    eta: float = 0.0,
    step_noise: StepNoise | None = None,
) -> Tensor:
    """Run DDIM along an explicit timestep list and return the clean estimate.

    For each consecutive pair ``(t, t_prev)`` of ``timesteps``::

        out   = denoise(x_t, t)                    # t as a (B,) int64 tensor
        x0    = predict_x0(x_t, t, out)            # then clip to [-clip_x0, clip_x0] if set
        x0    = consistency(x0)                    # if given (e.g. measured rows replaced)
        x0    = on_step(t, t_prev, x0)             # if given
        eps   = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)   # recomputed, so consistency holds
        x_t'  = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z

    with ``sigma = eta * sqrt((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))`` and
    ``z = step_noise(i)`` fresh noise at step ``i`` (``eta = 0``: deterministic DDIM; ``eta = 1``:
    the DDPM posterior's variance). At ``t_prev == 0`` the (consistent) ``x0`` is returned.

    Parameters
    ----------
    denoise : callable
        ``denoise(x_t, t) -> model output`` with ``x_t`` shaped like ``x_start``.
    x_start : Tensor
        ``x_{t0}``, e.g. from :func:`start_from`; ``(B, C, H, W)``.
    timesteps : sequence of int
        Strictly decreasing, from ``t0`` to 0 (see :func:`truncated_timesteps`).
        ``denoise`` is called ``len(timesteps) - 1`` times, with every entry but the last.
    schedule : NoiseSchedule
        The noise schedule the network was trained with.
    prediction : {"eps", "v"}
        What the network predicts.
    consistency : callable, optional
        Applied to every clean estimate.
    clip_x0 : float, optional
        Clamp clean estimates to ``[-clip_x0, clip_x0]`` (before consistency).
    on_step : callable, optional
        ``on_step(t, t_prev, x0) -> x0``: replaces every (consistent) clean estimate before the
        move to ``t_prev`` (and the returned one at the last step).
    eta : float
        Stochasticity of every move, 0 (deterministic) to 1; needs ``step_noise`` when above 0.
    step_noise : callable, optional
        ``step_noise(i) -> Tensor`` shaped like ``x_start``: the fresh standard normal noise of
        move ``i`` (0-based). Inference keys it by global coordinates, so tiles agree.

    Returns
    -------
    Tensor
        The final clean estimate ``x_0``, shaped like ``x_start``.
    """
    sampler = ddim_steps(
        denoise, x_start, timesteps, schedule, prediction, consistency, clip_x0, eta, step_noise
    )
    t, t_prev, x0_hat = next(sampler)
    while True:
        if on_step is not None:
            x0_hat = on_step(t, t_prev, x0_hat)
        if t_prev == 0:
            return x0_hat
        t, t_prev, x0_hat = sampler.send(x0_hat)


def ddim_steps(
    denoise: Callable[[Tensor, Tensor], Tensor],
    x_start: Tensor,
    timesteps: Sequence[int],
    schedule: NoiseSchedule,
    prediction: Prediction = "v",
    consistency: Callable[[Tensor], Tensor] | None = None,
    clip_x0: float | None = None,
    eta: float = 0.0,
    step_noise: StepNoise | None = None,
) -> Generator[tuple[int, int, Tensor], Tensor | None, None]:
    """The DDIM loop of :func:`ddim_sample` as a stepper, for samplers run side by side.

    Yields ``(t, t_prev, x0)`` at every step, ``x0`` the (clipped, consistent) clean estimate at
    ``t``; ``send(x0)`` moves to ``t_prev`` towards the given estimate (``next()`` or
    ``send(None)``: towards the yielded one) and yields the next step. Stops after the step with
    ``t_prev == 0``, whose estimate is the result. Several steppers advanced in turn can exchange
    their estimates at every step (joint XZ/YZ sampling, :mod:`skelem.inference.engine`).

    Parameters
    ----------
    denoise, x_start, timesteps, schedule, prediction, consistency, clip_x0, eta, step_noise
        As in :func:`ddim_sample`.

    Yields
    ------
    tuple of (int, int, Tensor)
        ``(t, t_prev, x0)``.
    """
    steps = _check_timesteps(timesteps, schedule)
    if eta < 0 or eta > 1:
        raise ValueError(f"eta must be between 0 and 1, got {eta}")
    if eta > 0 and step_noise is None:
        raise ValueError("stochastic sampling (eta > 0) needs step_noise")
    x_t = x_start
    batch = x_start.shape[0]
    for index, (t, t_prev) in enumerate(zip(steps[:-1], steps[1:], strict=True)):
        t_tensor = torch.full((batch,), t, dtype=torch.long, device=x_start.device)
        model_out = denoise(x_t, t_tensor)
        x0_hat = schedule.predict_x0(x_t, t, model_out, prediction)
        if clip_x0 is not None:
            x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
        if consistency is not None:
            x0_hat = consistency(x0_hat)
        given = yield t, t_prev, x0_hat
        if t_prev == 0:
            return
        target = x0_hat if given is None else given
        noise = step_noise(index) if eta > 0 else None
        x_t = ddim_step(x_t, target, t, t_prev, schedule, eta, noise)


def ddim_step(
    x_t: Tensor,
    x0_hat: Tensor,
    t: int,
    t_prev: int,
    schedule: NoiseSchedule,
    eta: float = 0.0,
    noise: Tensor | None = None,
) -> Tensor:
    """One DDIM move from ``t`` to ``t_prev`` towards the clean estimate ``x0_hat``.

    Parameters
    ----------
    x_t : Tensor
        The current sample at ``t``.
    x0_hat : Tensor
        The clean estimate to move towards, shaped like ``x_t``.
    t, t_prev : int
        Current and next timestep (``t_prev < t``).
    schedule : NoiseSchedule
        The noise schedule.
    eta : float
        0: deterministic; above 0 a share ``sigma`` of the move is fresh ``noise`` (see
        :func:`ddim_sample`).
    noise : Tensor, optional
        Standard normal noise shaped like ``x_t``; needed when ``eta > 0``.

    Returns
    -------
    Tensor
        ``x_{t_prev}``.
    """
    eps_hat = schedule.eps_from_x0(x_t, t, x0_hat)
    a_prev = schedule.alpha_bar(t_prev, like=x_t)
    if eta <= 0:
        return a_prev.sqrt() * x0_hat + (1 - a_prev).sqrt() * eps_hat
    if noise is None:
        raise ValueError("a stochastic DDIM move (eta > 0) needs noise")
    a_t = schedule.alpha_bar(t, like=x_t)
    sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).clamp(min=0).sqrt()
    kept = (1 - a_prev - sigma**2).clamp(min=0).sqrt()
    return a_prev.sqrt() * x0_hat + kept * eps_hat + sigma * noise
