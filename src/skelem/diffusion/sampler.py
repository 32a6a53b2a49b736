"""Deterministic (DDIM, eta = 0) truncated reverse diffusion with optional data consistency.

The sampler knows nothing of networks: it takes a ``denoise(x_t, t)`` callable returning the
network output in the schedule's parameterisation. It is differentiable (no ``no_grad`` inside),
so Stage 3 can back-propagate through the few steps; callers wrap it in ``torch.no_grad()`` for
inference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from skelem.diffusion.schedule import NoiseSchedule, Prediction


def start_from(x_prior: Tensor, noise: Tensor, t0: int, schedule: NoiseSchedule) -> Tensor:
    """The truncated starting point ``x_t0 = sqrt(abar(t0)) * prior + sqrt(1 - abar(t0)) * noise``."""
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


def ddim_sample(
    denoise: Callable[[Tensor, Tensor], Tensor],
    x_start: Tensor,
    timesteps: Sequence[int],
    schedule: NoiseSchedule,
    prediction: Prediction = "v",
    consistency: Callable[[Tensor], Tensor] | None = None,
    clip_x0: float | None = None,
) -> Tensor:
    """Run deterministic DDIM along an explicit timestep list and return the clean estimate.

    For each consecutive pair ``(t, t_prev)`` of ``timesteps``::

        out   = denoise(x_t, t)                    # t as a (B,) int64 tensor
        x0    = predict_x0(x_t, t, out)            # then clip to [-clip_x0, clip_x0] if set
        x0    = consistency(x0)                    # if given (e.g. measured rows replaced)
        eps   = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)   # recomputed, so consistency holds
        x_t'  = sqrt(abar_prev) x0 + sqrt(1 - abar_prev) eps

    and at ``t_prev == 0`` the (consistent) ``x0`` is returned.

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
    prediction : {"eps", "v"}
    consistency : callable, optional
        Applied to every clean estimate.
    clip_x0 : float, optional
        Clamp clean estimates to ``[-clip_x0, clip_x0]`` (before consistency).

    Returns
    -------
    Tensor
        The final clean estimate ``x_0``, shaped like ``x_start``.
    """
    steps = _check_timesteps(timesteps, schedule)
    x_t = x_start
    batch = x_start.shape[0]
    x0_hat = x_start
    for t, t_prev in zip(steps[:-1], steps[1:], strict=True):
        t_tensor = torch.full((batch,), t, dtype=torch.long, device=x_start.device)
        model_out = denoise(x_t, t_tensor)
        x0_hat = schedule.predict_x0(x_t, t, model_out, prediction)
        if clip_x0 is not None:
            x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
        if consistency is not None:
            x0_hat = consistency(x0_hat)
        if t_prev == 0:
            return x0_hat
        x_t = ddim_step(x_t, x0_hat, t, t_prev, schedule)
    return x0_hat  # unreachable: the list ends at 0


def ddim_step(x_t: Tensor, x0_hat: Tensor, t: int, t_prev: int, schedule: NoiseSchedule) -> Tensor:
    """One deterministic DDIM move from ``t`` to ``t_prev`` towards the clean estimate ``x0_hat``."""
    eps_hat = schedule.eps_from_x0(x_t, t, x0_hat)
    a_prev = schedule.alpha_bar(t_prev, like=x_t)
    return a_prev.sqrt() * x0_hat + (1 - a_prev).sqrt() * eps_hat
