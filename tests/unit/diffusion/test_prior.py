"""Residual prior propagation and data consistency on axial slices (rows = Z)."""

from __future__ import annotations

import pytest
import torch

from skelem.diffusion.prior import apply_consistency, measured_rows_mask, propagate_residual


def _column(values: list[float]) -> torch.Tensor:
    """A (1, 1, H, 2) batch whose two columns both hold ``values`` down the rows."""
    return torch.tensor(values, dtype=torch.float64)[None, None, :, None].repeat(1, 1, 1, 2)


def test_measured_rows_mask_follows_the_global_grid() -> None:
    assert measured_rows_mask(9, 4).tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert measured_rows_mask(6, 4, row_offset=3).tolist() == [0, 1, 0, 0, 0, 1]


def test_linear_between_measured_rows() -> None:
    nan = float("nan")
    residual = _column([0.0, nan, nan, nan, 4.0, nan, nan, nan, -4.0])  # unmeasured rows ignored
    out = propagate_residual(residual, measured_rows_mask(9, 4))
    expected = _column([0, 1, 2, 3, 4, 2, 0, -2, -4])
    assert torch.allclose(out, expected)


def test_attenuation_at_the_midpoint_and_edges() -> None:
    residual = _column([9.0, 2.0, 0.0, 0.0, 2.0, 0.0, 0.0])
    mask = torch.tensor([False, True, False, False, True, False, False])
    out = propagate_residual(residual, mask, attenuation=0.5)
    # rows 1 and 4 measured (value 2); between them g = 1 - 0.5 * 2 * min(d) / 3
    gain_13 = 1 - 0.5 * 2 * (1 / 3)
    expected = _column([2 * 0.5, 2, 2 * gain_13, 2 * gain_13, 2, 2 * 0.5, 2 * 0.5])
    assert torch.allclose(out, expected)
    even = propagate_residual(
        _column([2.0, 0, 0, 0, 2.0]), measured_rows_mask(5, 4), attenuation=0.25
    )
    assert torch.allclose(
        even[0, 0, :, 0], torch.tensor([2, 2 * 0.625, 2 * 0.25, 2 * 0.625, 2], dtype=torch.float64)
    )


def test_per_slice_masks_and_errors() -> None:
    residual = torch.stack([_column([1.0, 0, 3.0])[0], _column([1.0, 5.0, 3.0])[0]])
    masks = torch.tensor([[True, False, True], [True, True, True]])[:, None, :, None]
    out = propagate_residual(residual, masks)
    assert out[0, 0, :, 0].tolist() == [1, 2, 3] and out[1, 0, :, 0].tolist() == [1, 5, 3]
    with pytest.raises(ValueError, match="at least one measured row"):
        propagate_residual(residual, torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="rows"):
        propagate_residual(residual, torch.ones(4, dtype=torch.bool))


def test_consistency_sets_measured_rows_and_keeps_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 1, 17, 8, generator=gen, requires_grad=True)
    known = torch.randn(3, 1, 17, 8, generator=gen)
    mask = measured_rows_mask(17, 4, row_offset=2)
    out = apply_consistency(x0, known, mask)
    assert torch.equal(out[:, :, mask], known[:, :, mask])
    assert torch.equal(out[:, :, ~mask], x0[:, :, ~mask])
    out.sum().backward()
    assert torch.equal(x0.grad[0, 0, :, 0], (~mask).float())


def test_propagated_prior_is_consistent_with_itself() -> None:
    gen = torch.Generator().manual_seed(1)
    residual = torch.randn(2, 1, 33, 16, generator=gen)
    mask = measured_rows_mask(33, 8)
    prior = propagate_residual(residual, mask, attenuation=0.3)
    assert torch.allclose(apply_consistency(prior, residual, mask), prior)


def test_remove_slow_modes_projects_each_gap_on_its_own() -> None:
    """Each gap between measured rows loses its slowest sine modes and nothing else; a window
    that starts and ends on measured rows gives the same values as the whole column."""
    from skelem.diffusion.prior import remove_slow_modes

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1, 25, 7, generator=gen)
    mask = torch.zeros(25, dtype=torch.bool)
    mask[::6] = True  # gaps of 5 interior rows
    out = remove_slow_modes(x, mask, 2)
    torch.testing.assert_close(out[:, :, mask], x[:, :, mask], rtol=0, atol=0)
    j = torch.arange(1, 6, dtype=torch.float32)
    for a in (0, 6, 12, 18):
        gap_in, gap_out = x[:, :, a + 1 : a + 6], out[:, :, a + 1 : a + 6]
        for m in range(1, 6):
            wave = torch.sin(torch.pi * m * j / 6).view(1, 1, 5, 1)
            if m <= 2:
                assert float((gap_out * wave).sum(2).abs().max()) < 1e-5
            else:
                torch.testing.assert_close((gap_out * wave).sum(2), (gap_in * wave).sum(2))
    window = remove_slow_modes(x[:, :, 6:19], mask[6:19], 2)
    torch.testing.assert_close(window, out[:, :, 6:19], rtol=0, atol=0)
    assert remove_slow_modes(x, mask, 0) is x
    torch.testing.assert_close(remove_slow_modes(x, mask, 9)[:, :, ~mask], torch.zeros(3, 1, 20, 7))


def _slow_modes_one_gap_at_a_time(x: torch.Tensor, mask: torch.Tensor, modes: int) -> torch.Tensor:
    """The projection written gap by gap, row by row (the definition, slow)."""
    rows = torch.nonzero(mask).flatten().tolist()
    out = x.clone()
    for a, b in zip(rows[:-1], rows[1:], strict=True):
        span = b - a
        j = torch.arange(1, span, dtype=torch.float64)
        for m in range(1, min(modes, span - 1) + 1):
            basis = ((2.0 / span) ** 0.5 * torch.sin(torch.pi * m * j / span)).tolist()
            coef = sum(w * x[..., a + i, :] for i, w in enumerate(basis, start=1))
            for i, w in enumerate(basis, start=1):
                out[..., a + i, :] -= w * coef
    return out


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_remove_slow_modes_gives_the_bits_of_one_gap_at_a_time(layout) -> None:
    """All gaps of one length are projected at once, with the same bits as gap by gap, for
    uneven gaps (several lengths, adjacent measured rows, rows outside the first and last)."""
    from skelem.diffusion.prior import remove_slow_modes

    gen = torch.Generator().manual_seed(1)
    for trial in range(20):
        height = int(torch.randint(3, 60, (1,), generator=gen))
        mask = torch.rand(height, generator=gen) < 0.3
        x = torch.randn(2, 3, height, 11, generator=gen).contiguous(memory_format=layout)
        for modes in (1, 2, 3, 9):
            expected = _slow_modes_one_gap_at_a_time(x, mask, modes)
            assert torch.equal(remove_slow_modes(x, mask, modes), expected), (trial, modes)
