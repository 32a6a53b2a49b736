"""The real-domain residual prior and data consistency on axial slices (METHOD.md, Stage 3).

Slices are ``(B, C, H, W)`` batches whose rows (dim -2) are the axial direction. Which rows are
measured (acquired slices) is given explicitly as a boolean mask, either ``(H,)`` shared by the
batch or ``(B, 1, H, 1)`` per slice, so tiles starting anywhere on the output grid work
(see :func:`measured_rows_mask`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from skelem.grid import measured_rows


def measured_rows_mask(
    height: int, factor: int, row_offset: int = 0, device: torch.device | str = "cpu"
) -> Tensor:
    """Boolean ``(height,)`` mask of the measured rows of a window starting at ``row_offset``.

    On the output grid, acquired slice ``k`` lands on global row ``k * factor``; local row ``z`` of
    the window is measured when ``(row_offset + z) % factor == 0``. The torch form of
    :func:`skelem.grid.measured_rows`.

    Parameters
    ----------
    height : int
        Window height in rows.
    factor : int
        Integer anisotropy factor (at least 1).
    row_offset : int
        Global output row of the window's row 0.
    device : torch.device or str
        Device of the result.

    Returns
    -------
    Tensor
        Bool ``(height,)``.
    """
    return torch.from_numpy(measured_rows(height, factor, row_offset)).to(device)


def _mask_rows(measured: Tensor, height: int) -> Tensor:
    """Normalise a mask to ``(B', H)`` bool with ``B'`` 1 or the batch size."""
    mask = torch.as_tensor(measured).to(torch.bool)
    if mask.ndim == 1:
        mask = mask[None]
    elif mask.ndim == 4 and mask.shape[1] == 1 and mask.shape[3] == 1:
        mask = mask[:, 0, :, 0]
    else:
        raise ValueError(
            f"the measured-row mask must be (H,) or (B, 1, H, 1), got shape {tuple(mask.shape)}"
        )
    if mask.shape[-1] != height:
        raise ValueError(
            f"the measured-row mask has {mask.shape[-1]} rows, the slices have {height}"
        )
    return mask


def _broadcast_mask(measured: Tensor, like: Tensor) -> Tensor:
    return _mask_rows(measured, like.shape[-2]).to(like.device)[:, None, :, None]


def propagate_residual(
    rows_residual: Tensor, measured_mask: Tensor, attenuation: float = 1.0
) -> Tensor:
    """Spread the residual known at measured rows to every row.

    For a row ``z`` between measured rows ``a < z < b``::

        value(z) = ((b - z) * r_a + (z - a) * r_b) / (b - a) * g(z)
        g(z)     = 1 - (1 - attenuation) * 2 * min(z - a, b - z) / (b - a)

    so ``g`` is 1 at measured rows and ``attenuation`` at the midpoint. Rows before the first
    (after the last) measured row take the nearest measured value times ``attenuation``. Measured
    rows keep their value. Only measured rows of ``rows_residual`` are read.

    Parameters
    ----------
    rows_residual : Tensor
        ``(B, C, H, W)``, valid at measured rows (other rows are ignored).
    measured_mask : Tensor
        Bool ``(H,)`` or ``(B, 1, H, 1)``; at least one row measured per slice.
    attenuation : float
        In ``[0, 1]``; 1 means plain linear interpolation.

    Returns
    -------
    Tensor
        ``(B, C, H, W)`` propagated residual ``ρ̃``.
    """
    if rows_residual.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(rows_residual.shape)}")
    if not 0.0 <= attenuation <= 1.0:
        raise ValueError(f"attenuation must lie in [0, 1], got {attenuation}")
    batch, channels, height, width = rows_residual.shape
    mask = _mask_rows(measured_mask, height).to(rows_residual.device)
    if mask.shape[0] not in (1, batch):
        raise ValueError(f"the mask batch {mask.shape[0]} does not match the slice batch {batch}")
    if not bool(mask.any(dim=-1).all()):
        raise ValueError("every slice needs at least one measured row to propagate a residual")

    rows = torch.arange(height, device=rows_residual.device).expand_as(mask)
    prev = torch.where(mask, rows, torch.full_like(rows, -1)).cummax(dim=-1).values
    nxt = torch.where(mask, rows, torch.full_like(rows, height))
    nxt = nxt.flip(-1).cummin(dim=-1).values.flip(-1)
    has_prev, has_next = prev >= 0, nxt < height
    a = torch.where(has_prev, prev, nxt)
    b = torch.where(has_next, nxt, prev)
    between = has_prev & has_next & (b > a)

    dtype = rows_residual.dtype
    span = (b - a).clamp_min(1).to(dtype)
    z = rows.to(dtype)
    w_a = torch.where(between, (b.to(dtype) - z) / span, torch.ones_like(z))
    w_b = torch.where(between, (z - a.to(dtype)) / span, torch.zeros_like(z))
    nearest = torch.minimum(z - a.to(dtype), b.to(dtype) - z)
    gain = torch.where(
        between,
        1 - (1 - attenuation) * 2 * nearest / span,
        torch.where(has_prev & has_next, torch.ones_like(z), torch.full_like(z, attenuation)),
    )

    def gather(index: Tensor) -> Tensor:
        idx = index[:, None, :, None].expand(batch, channels, height, width)
        return torch.gather(rows_residual, 2, idx)

    w_a, w_b, gain = (w[:, None, :, None] for w in (w_a, w_b, gain))
    value_a = gather(a)
    # w_b is 0 where a == b; avoid 0 * (non-finite) from an ignored row by reading the same row.
    value_b = gather(torch.where(between, b, a))
    return (w_a * value_a + w_b * value_b) * gain


def apply_consistency(x0: Tensor, residual_rows: Tensor, measured_mask: Tensor) -> Tensor:
    """Replace the measured rows of ``x0`` by ``residual_rows`` (differentiable w.r.t. ``x0``).

    Parameters
    ----------
    x0 : Tensor
        ``(B, C, H, W)`` predicted residual.
    residual_rows : Tensor
        ``(B, C, H, W)`` known residual, read at measured rows only.
    measured_mask : Tensor
        Bool ``(H,)`` or ``(B, 1, H, 1)``.

    Returns
    -------
    Tensor
        ``(B, C, H, W)``: ``residual_rows`` at measured rows, ``x0`` elsewhere.
    """
    mask = _broadcast_mask(measured_mask, x0)
    return torch.where(mask, residual_rows.to(x0.dtype), x0)


def remove_slow_modes(x: Tensor, measured_mask: Tensor, modes: int) -> Tensor:
    """``x`` with its ``modes`` slowest axial sine modes removed between every two measured rows.

    Between measured rows ``a < b`` the interior rows ``a+1 .. b-1`` of each column are projected
    off the orthonormal sine vectors ``sqrt(2/N) sin(pi m j / N)``, ``N = b - a``,
    ``m = 1 .. modes``, ``j = 1 .. N-1`` (the discrete sine basis of the gap, so what is removed
    is the component slower than ``modes / (2N)`` cycles per row). Measured rows and rows outside
    the first and last measured row are left as they are. Each gap is treated on its own, so a
    tile that starts and ends on measured rows gets the same values as the whole volume; the
    arithmetic is elementwise, so the bits do not depend on the batch or the width.

    Parameters
    ----------
    x : Tensor
        ``(B, C, H, W)``, rows the axial direction.
    measured_mask : Tensor
        Bool ``(H,)`` or ``(1, 1, H, 1)``: the measured rows, shared by the batch.
    modes : int
        Sine modes to remove per gap (0: ``x`` as is; a gap of ``N - 1`` rows loses at most
        ``N - 1``, i.e. all of them).

    Returns
    -------
    Tensor
        A new tensor (``x`` itself when ``modes`` is 0).
    """
    if modes <= 0:
        return x
    mask = _mask_rows(measured_mask, x.shape[-2])
    if mask.shape[0] != 1:
        raise ValueError("removing slow modes needs one measured-row mask shared by the batch")
    rows = torch.nonzero(mask[0]).flatten().cpu()  # the index arithmetic on the CPU, any device
    starts, spans = rows[:-1], rows[1:] - rows[:-1]
    out = x.clone()
    # every gap of one length at once (the same sequence of elementwise operations per element
    # as one gap at a time, so the same bits): its interior rows gathered to (..., G, N - 1, W)
    for span in sorted(set(spans.tolist())):
        bases = [
            (
                (2.0 / span) ** 0.5
                * torch.sin(torch.pi * m * torch.arange(1, span, dtype=torch.float64) / span)
            ).tolist()
            for m in range(1, min(modes, span - 1) + 1)
        ]
        if not bases:
            continue
        gap_starts = starts[spans == span]
        index = (gap_starts[:, None] + torch.arange(1, span)[None, :]).flatten().to(x.device)
        interior = x[..., index, :].unflatten(-2, (len(gap_starts), span - 1))
        updated = interior.clone()
        for basis in bases:
            coef = sum(w * interior[..., i, :] for i, w in enumerate(basis))
            for i, w in enumerate(basis):
                updated[..., i, :] -= w * coef
        out[..., index, :] = updated.flatten(-3, -2)
    return out
