"""Noise schedule conventions, the eps/v algebra and the pinned truncated timestep list."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelem.config.models import DiffusionConfig
from skelem.diffusion.schedule import NoiseSchedule, truncated_timesteps


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_alpha_bar_is_one_at_zero_and_strictly_decreasing(kind: str) -> None:
    schedule = NoiseSchedule(1000, kind)
    abar = schedule.alphas_cumprod
    assert abar.dtype == np.float64 and abar.shape == (1001,)
    assert abar[0] == 1.0
    assert np.all(np.diff(abar) < 0)
    assert 0 < abar[-1] < 1e-3
    assert float(schedule.alpha_bar(0)) == 1.0
    assert torch.allclose(
        schedule.alpha_bar(torch.tensor([0, 10, 1000])), torch.from_numpy(abar[[0, 10, 1000]])
    )


def test_alpha_bar_broadcasts_like_a_batch_and_checks_range() -> None:
    schedule = NoiseSchedule(100)
    like = torch.zeros(3, 2, 4, 4)
    out = schedule.alpha_bar(torch.tensor([1, 2, 3]), like=like)
    assert out.shape == (3, 1, 1, 1) and out.dtype == torch.float32
    with pytest.raises(ValueError):
        schedule.alpha_bar(101)
    with pytest.raises(ValueError):
        schedule.alpha_bar(-1)
    with pytest.raises(ValueError):
        schedule.alpha_bar(torch.tensor([1.5]))


def test_from_config_and_training_timesteps() -> None:
    schedule = NoiseSchedule.from_config(DiffusionConfig(timesteps=50, schedule="linear", t0=20))
    assert (schedule.timesteps, schedule.kind) == (50, "linear")
    t = schedule.sample_timesteps(4000, generator=torch.Generator().manual_seed(0))
    assert int(t.min()) == 1 and int(t.max()) == 50 and t.dtype == torch.long
    capped = schedule.sample_timesteps(4000, generator=torch.Generator().manual_seed(0), t_max=40)
    assert int(capped.min()) == 1 and int(capped.max()) == 40
    with pytest.raises(ValueError, match="t_max must lie in 1..50"):
        schedule.sample_timesteps(4, t_max=51)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_predictions_invert_q_sample(prediction: str) -> None:
    schedule = NoiseSchedule(1000)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 1, 8, 8, generator=gen, dtype=torch.float64)
    noise = torch.randn(4, 1, 8, 8, generator=gen, dtype=torch.float64)
    t = torch.tensor([1, 200, 700, 1000])
    x_t = schedule.q_sample(x0, t, noise)
    target = schedule.model_target(x0, noise, t, prediction)
    assert torch.allclose(schedule.predict_x0(x_t, t, target, prediction), x0, atol=1e-6)
    assert torch.allclose(schedule.predict_eps(x_t, t, target, prediction), noise, atol=1e-6)
    assert torch.allclose(schedule.eps_from_x0(x_t, t, x0), noise, atol=1e-6)


def test_v_target_formula() -> None:
    schedule = NoiseSchedule(1000)
    x0, noise = torch.ones(1, 1, 2, 2), torch.full((1, 1, 2, 2), 2.0)
    abar = float(schedule.alpha_bar(300))
    expected = abar**0.5 * 2.0 - (1 - abar) ** 0.5 * 1.0
    assert torch.allclose(schedule.model_target(x0, noise, 300, "v"), torch.full_like(x0, expected))


def test_truncated_list_for_the_default_config() -> None:
    cfg = DiffusionConfig()
    assert (cfg.t0, cfg.steps) == (400, 2)
    assert truncated_timesteps(cfg.t0, cfg.steps) == [400, 200, 0]


def test_truncated_list_edge_cases() -> None:
    assert truncated_timesteps(200, 1) == [200, 0]
    assert truncated_timesteps(7, 7) == [7, 6, 5, 4, 3, 2, 1, 0]
    assert truncated_timesteps(10, 3) == [10, 7, 3, 0]
    for t0 in range(1, 60):
        for steps in range(1, t0 + 1):
            ts = truncated_timesteps(t0, steps)
            assert len(ts) == steps + 1 and ts[0] == t0 and ts[-1] == 0
            assert all(a > b for a, b in zip(ts, ts[1:], strict=False))
    with pytest.raises(ValueError, match="cannot exceed"):
        truncated_timesteps(3, 5)
    with pytest.raises(ValueError):
        truncated_timesteps(0, 1)
    with pytest.raises(ValueError):
        truncated_timesteps(10, 0)
