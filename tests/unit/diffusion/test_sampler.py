"""DDIM along the explicit list: oracle recovery, call pattern, consistency, gradients."""

from __future__ import annotations

import pytest
import torch

from skelem.diffusion.prior import apply_consistency, measured_rows_mask
from skelem.diffusion.sampler import ddim_sample, start_from
from skelem.diffusion.schedule import NoiseSchedule, truncated_timesteps


@pytest.fixture
def schedule() -> NoiseSchedule:
    return NoiseSchedule(1000, "cosine")


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, 1, 16, 16, generator=gen), torch.randn(2, 1, 16, 16, generator=gen)


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("steps", [1, 5])
def test_oracle_denoiser_recovers_x0(schedule: NoiseSchedule, prediction: str, steps: int) -> None:
    x0, noise = _data()
    timesteps = truncated_timesteps(200, steps)
    calls: list[list[int]] = []

    def oracle(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(t.tolist())
        assert torch.allclose(x_t, schedule.q_sample(x0, t, noise), atol=1e-5)
        return schedule.model_target(x0, noise, t, prediction)

    x_start = start_from(x0, noise, timesteps[0], schedule)
    out = ddim_sample(oracle, x_start, timesteps, schedule, prediction=prediction)
    assert torch.allclose(out, x0, atol=1e-5)
    assert len(calls) == steps
    assert [c[0] for c in calls] == timesteps[:-1] and all(len(set(c)) == 1 for c in calls)


def test_start_from_formula(schedule: NoiseSchedule) -> None:
    prior, noise = _data()
    abar = schedule.alpha_bar(200)
    expected = abar.sqrt().float() * prior + (1 - abar).sqrt().float() * noise
    assert torch.allclose(start_from(prior, noise, 200, schedule), expected, atol=1e-6)


def test_consistency_holds_on_the_output_and_every_estimate(schedule: NoiseSchedule) -> None:
    x_start, known = _data(1)
    mask = measured_rows_mask(16, 4)
    seen: list[torch.Tensor] = []

    def consistency(x0: torch.Tensor) -> torch.Tensor:
        out = apply_consistency(x0, known, mask)
        seen.append(out)
        return out

    def noisy_model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.sin(3 * x_t) + 0.1 * t[:, None, None, None]

    out = ddim_sample(
        noisy_model, x_start, truncated_timesteps(200, 5), schedule, consistency=consistency
    )
    assert len(seen) == 5
    assert torch.equal(out[:, :, mask], known[:, :, mask])
    assert not torch.allclose(out[:, :, ~mask], known[:, :, ~mask])


def test_clip_and_gradients_flow(schedule: NoiseSchedule) -> None:
    x_start, _ = _data(2)
    weight = torch.tensor(0.5, requires_grad=True)

    def model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return weight * x_t

    out = ddim_sample(model, x_start, [200, 100, 0], schedule, prediction="eps", clip_x0=0.25)
    assert float(out.detach().abs().max()) <= 0.25
    ddim_sample(model, x_start, [200, 100, 0], schedule).sum().backward()
    assert weight.grad is not None and float(weight.grad.abs()) > 0


@pytest.mark.parametrize("bad", [[200], [200, 200, 0], [0, 100], [200, 100], [2000, 0]])
def test_bad_timestep_lists_are_refused(schedule: NoiseSchedule, bad: list[int]) -> None:
    x_start, _ = _data()
    with pytest.raises(ValueError):
        ddim_sample(lambda x, t: x, x_start, bad, schedule)
