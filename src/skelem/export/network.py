"""The skeleton as one 3-D PyTorch module: anisotropic volume in, isotropic volume out.

:class:`SkeletonRestorer` is the architecture of SkelEM's bioimage.io models
(:mod:`skelem.export.bioimageio`): it holds the skeleton U-Net and does what ``skelem restore
--method skeleton`` does with it (interpolate along Z with Keys cubic convolution, restore every
XZ and every YZ cross-section, average the two passes), in one ``forward`` on a
``(batch, channel, z, y, x)`` tensor, so any bioimage.io consumer (bioimageio.core, deepImageJ...)
runs it without SkelEM's tiling machinery. Intensity normalisation is left to the model
description's pre- and post-processing.
"""

from __future__ import annotations

import torch
from torch import nn

from skelem.data.interpolation import upsample_torch
from skelem.diffusion.prior import propagate_residual
from skelem.models.context import neighbour_indices
from skelem.models.unet import UNet2D, apply_padded


class SkeletonRestorer(nn.Module):
    """Restore ``(B, 1, Z, Y, X)`` normalised volumes to ``(B, 1, factor*(Z-1)+1, Y, X)``.

    Parameters
    ----------
    factor : int
        Anisotropy factor (axial step over lateral pixel).
    channels, depth : int
        The skeleton U-Net's base channels and depth (its config's ``skeleton`` section).
    planes : {"both", "xz", "yz"}
        Which cross-sections are restored (``both``: the mean of the two passes).
    measured_residual : bool
        Add the residual measured on the acquired slices (input minus skeleton there), spread
        linearly to the slices in between: ``skelem restore --method skelem --detail 0``, which
        keeps the acquired slices exactly. Off: ``--method skeleton``.
    context : int
        The skeleton's neighbouring slices on each side (its config's ``skeleton.context``),
        taken from the volume and mirrored at its edges as ``skelem restore`` does.
    """

    def __init__(
        self,
        factor: int,
        channels: int = 16,
        depth: int = 3,
        planes: str = "both",
        measured_residual: bool = False,
        context: int = 0,
    ):
        super().__init__()
        if planes not in ("both", "xz", "yz"):
            raise ValueError(f"planes must be 'both', 'xz' or 'yz', not {planes!r}")
        self.factor = int(factor)
        self.planes = planes
        self.measured_residual = bool(measured_residual)
        self.context = int(context)
        self.skeleton = UNet2D(
            2 * self.context + 1, 1, channels=channels, depth=depth, residual_input=True
        )

    def _pass(self, upsampled: torch.Tensor, plane: str) -> torch.Tensor:
        """The skeleton over every ``plane`` section of ``(B, Zo, Y, X)``."""
        b, zo, y, x = upsampled.shape
        if plane == "xz":  # one (Zo, X) slice per y
            stacks = upsampled.permute(0, 2, 1, 3)
            return self._sections(stacks).reshape(b, y, zo, x).permute(0, 2, 1, 3)
        stacks = upsampled.permute(0, 3, 1, 2)  # one (Zo, Y) slice per x
        return self._sections(stacks).reshape(b, x, zo, y).permute(0, 2, 3, 1)

    def _sections(self, stacks: torch.Tensor) -> torch.Tensor:
        """The skeleton (and the measured residual) on every section of ``(B, N, Zo, W)``
        stacks of sections: ``(B * N, 1, Zo, W)``."""
        b, n, zo, w = stacks.shape
        sections = stacks.reshape(b * n, 1, zo, w)
        inputs = sections
        if self.context:
            idx = torch.from_numpy(neighbour_indices(n, self.context)).to(stacks.device)
            inputs = stacks[:, idx].reshape(b * n, idx.shape[1], zo, w)
        out = apply_padded(self.skeleton, inputs, multiple=self.skeleton.multiple)
        if not self.measured_residual:
            return out
        rows = torch.arange(sections.shape[-2], device=sections.device) % self.factor == 0
        row_mask = rows.view(1, 1, -1, 1)
        measured = torch.where(row_mask, sections - out, torch.zeros_like(out))
        return out + propagate_residual(measured, row_mask)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        """Restore a batch of anisotropic volumes.

        Parameters
        ----------
        volume : torch.Tensor
            ``(B, 1, Z, Y, X)``, normalised as the model was trained.

        Returns
        -------
        torch.Tensor
            ``(B, 1, factor*(Z-1)+1, Y, X)`` float32.
        """
        upsampled = upsample_torch(volume[:, 0].float(), self.factor, dim=1, method="cubic")
        planes = ("xz", "yz") if self.planes == "both" else (self.planes,)
        restored = sum(self._pass(upsampled, plane) for plane in planes) / len(planes)
        return restored[:, None]
