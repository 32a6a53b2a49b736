"""Neighbouring slices as extra input channels of the skeleton (a 2.5-D input).

A restore's XZ slice at ``y`` has neighbours at ``y - 1, y + 1, ...``, one lateral voxel apart and
degraded along Z exactly like it; so has every YZ slice along X. A skeleton with ``context = k``
sees the slice and its ``k`` nearest neighbours on each side as ``2k + 1`` channels: the slice
first (its residual connection and target), then the neighbours at ``-1, +1, -2, +2, ...``. It
learns from true Z pairs of an isotropic volume, whose XZ/YZ planes have neighbours of the same
geometry (``benchmarks/probes/skeleton_context.py``). A volume's own XY pairs have no such
neighbours (the next XY slice is ``factor`` voxels away): their slice is repeated in every channel.
"""

from __future__ import annotations

import torch

from skelem.grid import mirrored_range, neighbour_indices, neighbour_offsets

__all__ = [
    "input_channels",
    "mirrored_range",
    "neighbour_indices",
    "neighbour_offsets",
    "repeat_channels",
    "skeleton_context",
    "with_neighbours",
]


def with_neighbours(
    slices: torch.Tensor, context: int, start: int = 0, stop: int | None = None
) -> torch.Tensor:
    """Slices ``start:stop`` of a stack ``(N, 1, H, W)`` with their neighbours as channels.

    Parameters
    ----------
    slices : torch.Tensor
        ``(N, 1, H, W)``: consecutive slices along the stacking axis (the whole stack, so the
        neighbours of the first and last slices asked for are real where they exist).
    context : int
        Neighbours on each side; 0 returns ``slices[start:stop]``.
    start, stop : int
        The slices wanted (default: all).

    Returns
    -------
    torch.Tensor
        ``(stop - start, 2k + 1, H, W)``, channel 0 the slice itself.
    """
    stop = len(slices) if stop is None else stop
    if context <= 0:
        return slices[start:stop]
    idx = torch.from_numpy(neighbour_indices(len(slices), context)[start:stop]).to(slices.device)
    n, c = idx.shape
    return slices[:, 0][idx.reshape(-1)].reshape(n, c, *slices.shape[-2:])


def repeat_channels(u: torch.Tensor, channels: int) -> torch.Tensor:
    """``U`` ``(B, 1, H, W)`` repeated to ``channels``: the input of a context skeleton for slices
    without neighbours of the restore's geometry (a volume's own XY pairs); as is otherwise.

    Parameters
    ----------
    u : torch.Tensor
        ``(B, C, H, W)``.
    channels : int
        The skeleton's input channels.

    Returns
    -------
    torch.Tensor
    """
    if u.shape[1] == channels:
        return u
    if u.shape[1] != 1:
        raise ValueError(f"cannot fit {u.shape[1]} input channels to {channels}")
    return u.expand(-1, channels, -1, -1).contiguous()


def input_channels(network: torch.nn.Module | None) -> int:
    """The input channels a network takes (1 when it does not say)."""
    return int(getattr(network, "in_channels", 1)) if network is not None else 1


def skeleton_context(skeleton: torch.nn.Module | None) -> int:
    """Neighbours on each side a skeleton takes: ``(in_channels - 1) // 2``."""
    return (input_channels(skeleton) - 1) // 2
