"""The skeleton loss's SSIM (``ssim_gaussian7``): banded matrix products equal to the 7x7 window."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from skelem.training.losses import GAUSSIAN7_SIGMA, ssim_gaussian7


def _ssim_by_convolution(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The definition: five valid 7x7 Gaussian convolutions (sigma 1.5), in ``x``'s dtype."""
    coords = torch.arange(7, dtype=x.dtype) - 3
    g = torch.exp(-(coords**2) / (2 * GAUSSIAN7_SIGMA**2))
    window = ((g / g.sum())[:, None] * (g / g.sum())[None, :])[None, None]
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    sxx = F.conv2d(x * x, window) - mu_x**2
    syy = F.conv2d(y * y, window) - mu_y**2
    sxy = F.conv2d(x * y, window) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).mean()


@pytest.mark.parametrize("shape", [(3, 1, 20, 13), (2, 1, 7, 9)])
def test_ssim_loss_and_its_gradient_equal_the_convolution_definition(shape) -> None:
    torch.manual_seed(0)
    x = torch.rand(shape, dtype=torch.float64, requires_grad=True)
    y = (x.detach() + 0.2 * torch.randn(shape, dtype=torch.float64)).clamp(0, 1)
    fast = ssim_gaussian7(x, y)
    (grad_fast,) = torch.autograd.grad(fast, x)
    slow = _ssim_by_convolution(x, y)
    (grad_slow,) = torch.autograd.grad(slow, x)
    assert 0.0 < float(fast) < 1.0
    assert abs(float(fast - slow)) < 1e-12
    assert torch.allclose(grad_fast, grad_slow, atol=1e-12, rtol=0)
    assert float(ssim_gaussian7(y, y)) == pytest.approx(1.0, abs=1e-12)
