"""The noise schedule, the diffusion algebra (eps / v) and the truncated timestep list.

Conventions
-----------
- Timesteps are integers ``t`` in ``0..T`` (``T = timesteps``). ``alpha_bar(0) == 1`` exactly:
  ``t = 0`` is clean data. ``alpha_bar`` decreases strictly with ``t``; ``alpha_bar(T)`` is close to
  (but above) 0, pure noise for practical purposes.
- ``x_t = sqrt(alpha_bar(t)) * x0 + sqrt(1 - alpha_bar(t)) * eps`` with ``eps ~ N(0, 1)``.
- Training draws ``t`` uniformly in ``1..t_max <= T`` (:meth:`NoiseSchedule.sample_timesteps`);
  the network is never asked to denoise at ``t = 0``.
- ``prediction="eps"``: the network predicts ``eps``. ``prediction="v"``:
  ``v = sqrt(alpha_bar) * eps - sqrt(1 - alpha_bar) * x0`` (Salimans & Ho, 2022).
- Truncated sampling follows an explicit list from ``t0`` down to 0 (:func:`truncated_timesteps`);
  the previous step is always read from that list.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

Prediction = Literal["eps", "v"]
_MAX_BETA = 0.999


def _predicts_eps(prediction: str) -> bool:
    """True for ``"eps"``, False for ``"v"``; any other network target is refused."""
    if prediction not in get_args(Prediction):
        raise ValueError(f"unknown prediction {prediction!r}; use 'eps' or 'v'")
    return prediction == "eps"


def _cosine_alpha_bar(timesteps: int, offset: float = 0.008) -> np.ndarray:
    steps = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    f = np.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
    ratio = f[1:] / f[:-1]
    betas = np.clip(1.0 - ratio, 0.0, _MAX_BETA)
    return np.concatenate([[1.0], np.cumprod(1.0 - betas)])


def _linear_alpha_bar(timesteps: int) -> np.ndarray:
    scale = 1000.0 / timesteps
    betas = np.linspace(scale * 1e-4, min(scale * 0.02, _MAX_BETA), timesteps, dtype=np.float64)
    return np.concatenate([[1.0], np.cumprod(1.0 - betas)])


class NoiseSchedule:
    """A variance-preserving noise schedule over ``timesteps`` steps.

    Parameters
    ----------
    timesteps : int
        ``T``; valid timesteps are ``0..T``.
    kind : {"cosine", "linear"}
        Cosine (Nichol & Dhariwal, 2021) or linear betas (Ho et al., 2020, rescaled to ``T``).

    Attributes
    ----------
    alphas_cumprod : np.ndarray
        ``(T + 1,)`` float64, ``alphas_cumprod[0] == 1``, strictly decreasing.
    """

    def __init__(self, timesteps: int = 1000, kind: Literal["cosine", "linear"] = "cosine") -> None:
        if int(timesteps) != timesteps or timesteps < 2:
            raise ValueError(f"timesteps must be an integer of at least 2, got {timesteps}")
        self.timesteps = int(timesteps)
        self.kind = kind
        if kind == "cosine":
            abar = _cosine_alpha_bar(self.timesteps)
        elif kind == "linear":
            abar = _linear_alpha_bar(self.timesteps)
        else:
            raise ValueError(f"unknown schedule {kind!r}; use 'cosine' or 'linear'")
        self.alphas_cumprod = abar
        self._abar_torch = torch.from_numpy(abar)

    @classmethod
    def from_config(cls, cfg: object) -> NoiseSchedule:
        """Build from a :class:`skelem.config.models.DiffusionConfig`.

        Parameters
        ----------
        cfg : DiffusionConfig
            Read for ``timesteps`` and ``schedule``.

        Returns
        -------
        NoiseSchedule
        """
        return cls(cfg.timesteps, cfg.schedule)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"NoiseSchedule(timesteps={self.timesteps}, kind={self.kind!r})"

    # ----------------------------------------------------------------------------- lookups
    def alpha_bar(self, t: Tensor | int, like: Tensor | None = None) -> Tensor:
        """``alpha_bar(t)`` for integer ``t`` in ``0..T``.

        Parameters
        ----------
        t : Tensor or int
            Scalar or ``(B,)`` integer timesteps.
        like : Tensor, optional
            A ``(B, C, H, W)`` tensor: the result is shaped ``(B, 1, 1, 1)`` (broadcastable) with
            its dtype and device. Without it, a float64 tensor shaped like ``t``.
        """
        t = torch.as_tensor(t)
        if t.is_floating_point():
            if not torch.equal(t, t.round()):
                raise ValueError("timesteps must be integers")
            t = t.round()
        t = t.to(device="cpu", dtype=torch.long)
        if t.numel() and (int(t.min()) < 0 or int(t.max()) > self.timesteps):
            raise ValueError(f"timesteps must lie in 0..{self.timesteps}")
        abar = self._abar_torch[t]
        if like is None:
            return abar
        abar = abar.to(device=like.device, dtype=like.dtype)
        if abar.ndim == 0:
            return abar
        return abar.reshape(-1, *([1] * (like.ndim - 1)))

    def _coefficients(self, t: Tensor | int, like: Tensor) -> tuple[Tensor, Tensor]:
        abar = self.alpha_bar(t, like=like)
        return abar.sqrt(), (1 - abar).clamp_min(0).sqrt()

    def sample_timesteps(
        self,
        batch: int,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        t_max: int | None = None,
    ) -> Tensor:
        """``(batch,)`` int64 training timesteps drawn uniformly in ``1..t_max``.

        Parameters
        ----------
        batch : int
            Number of timesteps.
        generator : torch.Generator, optional
            CPU generator to draw from (the global one when omitted).
        device : torch.device or str
            Where the result is moved after drawing on the CPU.
        t_max : int, optional
            Largest timestep, ``1..T`` (default ``T``).

        Returns
        -------
        Tensor
            ``(batch,)`` int64 timesteps on ``device``.
        """
        high = self.timesteps if t_max is None else int(t_max)
        if not 1 <= high <= self.timesteps:
            raise ValueError(f"t_max must lie in 1..{self.timesteps}, got {t_max}")
        t = torch.randint(1, high + 1, (batch,), generator=generator)
        return t.to(device)

    # ----------------------------------------------------------------------------- algebra
    def q_sample(self, x0: Tensor, t: Tensor | int, noise: Tensor) -> Tensor:
        """Noisy sample ``x_t = sqrt(abar) * x0 + sqrt(1 - abar) * noise``.

        Parameters
        ----------
        x0 : Tensor
            ``(B, C, H, W)`` clean sample.
        t : Tensor or int
            Scalar or ``(B,)`` timesteps in ``0..T``.
        noise : Tensor
            Standard normal, shaped like ``x0``.

        Returns
        -------
        Tensor
            ``x_t``, shaped like ``x0``.
        """
        a, b = self._coefficients(t, x0)
        return a * x0 + b * noise

    def model_target(
        self, x0: Tensor, noise: Tensor, t: Tensor | int, prediction: Prediction = "v"
    ) -> Tensor:
        """What the network is trained to output: ``noise`` (eps) or ``v``.

        Parameters
        ----------
        x0 : Tensor
            ``(B, C, H, W)`` clean sample.
        noise : Tensor
            The noise that made ``x_t``, shaped like ``x0``.
        t : Tensor or int
            Scalar or ``(B,)`` timesteps.
        prediction : {"eps", "v"}

        Returns
        -------
        Tensor
            Shaped like ``x0``.
        """
        if _predicts_eps(prediction):
            return noise
        a, b = self._coefficients(t, x0)
        return a * noise - b * x0

    def predict_x0(
        self, x_t: Tensor, t: Tensor | int, model_out: Tensor, prediction: Prediction = "v"
    ) -> Tensor:
        """Clean estimate from the network output (inverts :meth:`q_sample`, :meth:`model_target`).

        Parameters
        ----------
        x_t : Tensor
            ``(B, C, H, W)`` noisy sample.
        t : Tensor or int
            Scalar or ``(B,)`` timesteps.
        model_out : Tensor
            The network output, shaped like ``x_t``.
        prediction : {"eps", "v"}

        Returns
        -------
        Tensor
            Shaped like ``x_t``.
        """
        a, b = self._coefficients(t, x_t)
        if _predicts_eps(prediction):
            return (x_t - b * model_out) / a
        return a * x_t - b * model_out

    def predict_eps(
        self, x_t: Tensor, t: Tensor | int, model_out: Tensor, prediction: Prediction = "v"
    ) -> Tensor:
        """Noise estimate from the network output.

        Parameters
        ----------
        x_t : Tensor
            ``(B, C, H, W)`` noisy sample.
        t : Tensor or int
            Scalar or ``(B,)`` timesteps.
        model_out : Tensor
            The network output, shaped like ``x_t``.
        prediction : {"eps", "v"}

        Returns
        -------
        Tensor
            Shaped like ``x_t``.
        """
        a, b = self._coefficients(t, x_t)
        if _predicts_eps(prediction):
            return model_out
        return b * x_t + a * model_out

    def eps_from_x0(self, x_t: Tensor, t: Tensor | int, x0: Tensor) -> Tensor:
        """The noise that takes ``x0`` to ``x_t`` at step ``t >= 1``.

        ``(x_t - sqrt(abar) * x0) / sqrt(1 - abar)``.

        Parameters
        ----------
        x_t : Tensor
            ``(B, C, H, W)`` noisy sample.
        t : Tensor or int
            Scalar or ``(B,)`` timesteps, at least 1.
        x0 : Tensor
            Clean estimate, shaped like ``x_t``.

        Returns
        -------
        Tensor
            Shaped like ``x_t``.
        """
        a, b = self._coefficients(t, x_t)
        return (x_t - a * x0) / b.clamp_min(1e-12)


def truncated_timesteps(t0: int, steps: int) -> list[int]:
    """The explicit reverse-time list from ``t0`` down to 0: ``steps + 1`` integers, ends included.

    Entries are ``round(t0 * (steps - i) / steps)`` (halves rounded up) for ``i = 0..steps``:
    evenly spaced and strictly decreasing. The sampler takes each consecutive pair ``(t, t_prev)``.

    Parameters
    ----------
    t0 : int
        The truncation timestep the reverse process starts from.
    steps : int
        Number of reverse steps.

    Returns
    -------
    list of int
        ``steps + 1`` timesteps from ``t0`` to 0.

    Examples
    --------
    >>> truncated_timesteps(200, 5)
    [200, 160, 120, 80, 40, 0]

    Raises
    ------
    ValueError
        ``t0 < 1``, ``steps < 1`` or ``steps > t0``.
    """
    if int(t0) != t0 or int(steps) != steps:
        raise ValueError("t0 and steps must be integers")
    t0, steps = int(t0), int(steps)
    if t0 < 1:
        raise ValueError(f"t0 must be at least 1, got {t0}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if steps > t0:
        raise ValueError(f"steps ({steps}) cannot exceed t0 ({t0})")
    out = [(2 * t0 * (steps - i) + steps) // (2 * steps) for i in range(steps + 1)]
    assert all(a > b for a, b in zip(out, out[1:], strict=False)) and out[-1] == 0
    return out
