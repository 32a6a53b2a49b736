"""The alignment's structure and texture terms: blur, gradient energies, log-ratio."""

from __future__ import annotations

import pytest
import torch

from skelem.training.losses import gaussian_blur, row_texture_energy, texture_log_ratio


def test_blur_keeps_constants_and_removes_fine_texture() -> None:
    flat = torch.full((2, 1, 16, 20), 0.7)
    torch.testing.assert_close(gaussian_blur(flat, 1.5), flat)
    checker = (torch.arange(16)[:, None] + torch.arange(20)[None, :]) % 2
    checker = checker.float()[None, None]
    blurred = gaussian_blur(checker, 1.0)
    assert float(blurred[..., 4:-4, 4:-4].std()) < 0.05 * float(checker.std())
    assert gaussian_blur(checker, 0.0) is checker


def test_blur_along_chosen_dims_only() -> None:
    x = torch.zeros(9, 9, 9)
    x[4, 4, 4] = 1.0
    rows_only = gaussian_blur(x, 1.0, dims=(0,))
    assert float(rows_only[:, 4, 4].sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(rows_only[:, 4, 3].abs().max()) == 0.0
    assert float(gaussian_blur(x, 1.0, dims=(0, 1, 2)).sum()) == pytest.approx(1.0, abs=1e-5)


def test_row_texture_energy_is_the_mean_squared_neighbour_difference() -> None:
    x = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]])
    torch.testing.assert_close(row_texture_energy(x), torch.tensor([2.5, 0.0]))


def test_texture_log_ratio_is_zero_when_energies_match_and_symmetric_in_ratio() -> None:
    e = torch.tensor([0.01, 0.04])
    assert float(texture_log_ratio(e, e)) == pytest.approx(0.0, abs=1e-6)
    up = float(texture_log_ratio(2 * e, e))
    down = float(texture_log_ratio(e / 2, e))
    assert up == pytest.approx(down, rel=1e-3) and up > 0.6
    target = e.clone().requires_grad_(True)
    energy = (3 * e).requires_grad_(True)
    texture_log_ratio(energy, target).backward()
    assert target.grad is None and energy.grad is not None
