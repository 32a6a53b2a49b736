"""Training losses on ``(B, 1, H, W)`` tensors.

The structural term of the skeleton losses is :func:`ssim_gaussian7`, a differentiable SSIM with a
7x7 Gaussian window (sigma 1.5) over the valid region. It is *not* the evaluation SSIM
(:func:`skelem.metrics.fidelity.ssim`), which scores restored volumes with its own window; the two
give different numbers on the same images and are not interchangeable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from skelem.diffusion.schedule import NoiseSchedule, Prediction

GAUSSIAN7_SIZE = 7
GAUSSIAN7_SIGMA = 1.5


def _valid_blur_matrix(n: int, like: torch.Tensor) -> torch.Tensor:
    """``(n - 6, n)`` matrix whose product with a length-``n`` signal is its valid 7-tap
    Gaussian filtering (sigma 1.5): row ``i`` holds the taps at columns ``i .. i + 6``."""
    coords = torch.arange(GAUSSIAN7_SIZE, dtype=like.dtype, device=like.device)
    g = torch.exp(-((coords - (GAUSSIAN7_SIZE - 1) / 2) ** 2) / (2 * GAUSSIAN7_SIGMA**2))
    rows = n - GAUSSIAN7_SIZE + 1
    columns = torch.arange(rows, device=like.device)[:, None] + torch.arange(
        GAUSSIAN7_SIZE, device=like.device
    )
    out = torch.zeros(rows, n, dtype=like.dtype, device=like.device)
    return out.scatter_(1, columns, (g / g.sum()).expand(rows, GAUSSIAN7_SIZE))


def ssim_gaussian7(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of two batches with a 7x7 Gaussian window (sigma 1.5), valid region only.

    The training loss's SSIM: differentiable, on torch batches. Evaluation scores use
    :func:`skelem.metrics.fidelity.ssim` instead, whose window differs.

    Parameters
    ----------
    x, y : torch.Tensor
        ``(B, 1, H, W)`` batches with ``H, W >= 7``, same shape, dtype and device.
    data_range : float
        Intensity range of the data (1.0 for normalised slices); sets the stabilising constants
        ``(0.01 * data_range)**2`` and ``(0.03 * data_range)**2``.

    Returns
    -------
    torch.Tensor
        Scalar mean SSIM over the ``(H - 6, W - 6)`` valid positions of every slice.
    """
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    # The separable window as two banded matrix products over the five maps at once: the same
    # values as five 7x7 convolutions (within float rounding) at a sixth of their cost forward
    # and backward on the CPU, where single-channel convolutions are slow (RESULTS.md, issue 13).
    height, width = x.shape[-2:]
    maps = torch.stack([x, y, x * x, y * y, x * y])  # (5, B, C, H, W)
    blurred = _valid_blur_matrix(height, x) @ maps @ _valid_blur_matrix(width, x).T
    mu_x, mu_y, exx, eyy, exy = blurred.unbind()
    sxx = exx - mu_x**2
    syy = eyy - mu_y**2
    sxy = exy - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).mean()


def gradient_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 distance between finite-difference gradients along H and W.

    Parameters
    ----------
    x, y : torch.Tensor
        ``(..., H, W)`` tensors of the same shape.

    Returns
    -------
    torch.Tensor
        Scalar: mean absolute difference of the W-gradients plus that of the H-gradients.
    """
    dx = (x[..., :, 1:] - x[..., :, :-1]) - (y[..., :, 1:] - y[..., :, :-1])
    dy = (x[..., 1:, :] - x[..., :-1, :]) - (y[..., 1:, :] - y[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def skeleton_loss(
    pred: torch.Tensor, target: torch.Tensor, mse_weight: float = 10.0, ssim_weight: float = 0.2
) -> torch.Tensor:
    """Fidelity loss that favours structure: ``mse_weight * MSE + ssim_weight * (1 - SSIM)``.

    The fidelity term is squared error, not L1: on the real FIB-SEM at x8 an L1 + SSIM skeleton
    collapsed to the identity correction (its output equalled cubic interpolation after 1,500
    iterations, while the same run with this loss gained 1.1 dB; benchmarks/RESULTS.md). L1's
    optimum is the conditional median, which is zero when the missing detail is uncertain.
    SSIM is :func:`ssim_gaussian7`.

    Parameters
    ----------
    pred, target : torch.Tensor
        ``(B, 1, H, W)`` skeleton output and high-resolution target, normalised intensities.
    mse_weight, ssim_weight : float
        Weights of the two terms.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    return mse_weight * F.mse_loss(pred, target) + ssim_weight * (
        1.0 - ssim_gaussian7(pred, target)
    )


def skeleton_loss_l1(
    pred: torch.Tensor, target: torch.Tensor, ssim_weight: float = 0.2
) -> torch.Tensor:
    """``L1 + ssim_weight * (1 - SSIM)``: the skeleton's first loss (see :func:`skeleton_loss`).

    Parameters
    ----------
    pred, target : torch.Tensor
        ``(B, 1, H, W)`` skeleton output and high-resolution target, normalised intensities.
    ssim_weight : float
        Weight of the :func:`ssim_gaussian7` term.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    return F.l1_loss(pred, target) + ssim_weight * (1.0 - ssim_gaussian7(pred, target))


def skeleton_loss_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``10 * MSE``: squared error alone, the loss whose optimum is the PSNR optimum.

    Parameters
    ----------
    pred, target : torch.Tensor
        ``(B, 1, H, W)`` skeleton output and high-resolution target, normalised intensities.

    Returns
    -------
    torch.Tensor
        Scalar loss (scaled like :func:`skeleton_loss`'s squared-error term).
    """
    return 10.0 * F.mse_loss(pred, target)


SKELETON_LOSSES = {
    "mse_ssim": skeleton_loss,
    "l1_ssim": skeleton_loss_l1,
    "mse": skeleton_loss_mse,
}


def denoising_loss(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    condition: tuple[torch.Tensor, ...],
    generator: torch.Generator,
    t_max: int,
    prediction: Prediction,
) -> torch.Tensor:
    """The diffusion objective: MSE between ``model(cat([x_t, *condition]), t)`` and its target.

    Draws, in this order from ``generator``, the timesteps ``t`` uniformly in ``1..t_max``
    (:meth:`NoiseSchedule.sample_timesteps`) and the standard normal noise shaped like ``x0``
    (both on the CPU, then moved to ``x0``'s device), so a given generator state gives the same
    loss on every device. The refiner (``x0`` = scaled residual, condition ``(S(U), U)``) and the
    pure-diffusion peer (``x0`` = slice, condition ``(U,)``) both train on it.

    Parameters
    ----------
    model : torch.nn.Module
        ``model(input, t)`` with ``input`` of ``1 + len(condition)`` channels.
    schedule : NoiseSchedule
    x0 : torch.Tensor
        ``(B, 1, H, W)`` clean sample.
    condition : tuple of torch.Tensor
        ``(B, 1, H, W)`` conditioning channels, concatenated after ``x_t``.
    generator : torch.Generator
        CPU generator the timesteps and noise are drawn from (advanced by the call).
    t_max : int
        Largest training timestep (``T`` for the peer, ``min(T, 2 * t0)`` for the refiner).
    prediction : {"eps", "v"}
        What the network outputs.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    t = schedule.sample_timesteps(x0.shape[0], generator=generator, device=x0.device, t_max=t_max)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    x_t = schedule.q_sample(x0, t, noise)
    out = model(torch.cat([x_t, *condition], dim=1), t)
    return F.mse_loss(out, schedule.model_target(x0, noise, t, prediction))


def gaussian_blur(x: torch.Tensor, sigma: float, dims: tuple[int, ...] = (-2, -1)) -> torch.Tensor:
    """Separable Gaussian blur along ``dims`` (reflect padding; ``sigma`` in pixels).

    The structure terms of the alignment compare blurred images, so they constrain what the
    skeleton and the measured rows determine and leave the fine texture to the texture terms.

    Parameters
    ----------
    x : torch.Tensor
        Any shape; every blurred dimension longer than ``3 * sigma``.
    sigma : float
        Standard deviation in pixels; 0 returns ``x`` unchanged.
    dims : tuple of int
        The dimensions blurred (default the last two: ``(B, 1, H, W)`` slices).

    Returns
    -------
    torch.Tensor
        Shaped like ``x``.
    """
    if sigma <= 0:
        return x
    radius = max(1, int(round(3 * sigma)))
    coords = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    for dim in dims:
        moved = x.movedim(dim, -1)
        flat = moved.reshape(-1, 1, moved.shape[-1])
        flat = F.conv1d(F.pad(flat, (radius, radius), mode="reflect"), kernel)
        x = flat.reshape(moved.shape).movedim(-1, dim)
    return x


def row_texture_energy(x: torch.Tensor) -> torch.Tensor:
    """Mean squared neighbour difference along the columns of each row, ``(..., H, W) -> (..., H)``.

    On a cross-plane slice (rows = Z) this is the lateral gradient energy of each restored XY
    line, the quantity :func:`skelem.metrics.stationarity.z_texture_stationarity` groups by phase.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., H, W)`` with ``W >= 2``.

    Returns
    -------
    torch.Tensor
        ``(..., H)``.
    """
    return ((x[..., 1:] - x[..., :-1]) ** 2).mean(dim=-1)


def texture_log_ratio(
    energy: torch.Tensor, target: torch.Tensor, floor: float = 1e-6
) -> torch.Tensor:
    """Mean ``|log(energy) - log(target)|``: texture energies compared as ratios (scale-free).

    Parameters
    ----------
    energy, target : torch.Tensor
        Non-negative energies of the same shape (``target`` is not differentiated).
    floor : float
        Added to both before the logarithm.

    Returns
    -------
    torch.Tensor
        Scalar loss; 0 when the energies match.
    """
    return (torch.log(energy + floor) - torch.log(target.detach() + floor)).abs().mean()
