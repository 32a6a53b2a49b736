"""A tile-invariant 2-D U-Net, plus helpers for padding, parameter counts and receptive fields.

Tile invariance: the network has no normalisation over space and no attention, only 3x3
zero-padded convolutions, pointwise activations, 2x2 pooling and 2x upsampling. An output pixel
therefore depends only on the input within :func:`measured_receptive_field` pixels, so a tile cut
at positions aligned to ``2**depth`` with a halo at least that wide reproduces the untiled output.

Shapes: inputs ``(B, C, H, W)`` with ``H`` and ``W`` multiples of ``model.multiple`` (``2**depth``);
use :func:`pad_to_multiple` or :func:`apply_padded` for other sizes.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from skelem.memory import release_free_memory

MAX_CHANNELS = 128


def _activation(name: str) -> nn.Module:
    if name == "silu":
        return nn.SiLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.1)
    raise ValueError(f"unknown activation {name!r}; use 'silu' or 'leaky_relu'")


def _activate(act: nn.Module, h: Tensor) -> Tensor:
    """``act(h)``, overwriting ``h`` when no gradient is recorded (inference).

    Without autograd a convolution's output is used once, so the activation can reuse its
    memory: the same values, one allocation less per layer (7-11% of a skeleton
    call on the CPU, RESULTS.md issue 13). Training keeps the input for the backward pass.
    """
    if torch.is_grad_enabled() and h.requires_grad:
        return act(h)
    if isinstance(act, nn.SiLU):
        return F.silu(h, inplace=True)
    if isinstance(act, nn.LeakyReLU):
        return F.leaky_relu(h, act.negative_slope, inplace=True)
    return act(h)


#: Rows of the 4-tap kernel of a stride-2 transposed convolution as sums of a 3x3 kernel's rows:
#: a 3x3 convolution of a 2x nearest-upsampled image, written as one transposed convolution of the
#: image itself (tap ``k`` of ``conv_transpose2d(stride=2, padding=1)`` -> the 3x3 rows it sums).
_NEAREST_TAPS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def upsampled_conv_kernel(weight: Tensor) -> Tensor:
    """The transposed-convolution kernel equal to a 3x3 convolution after 2x nearest upsampling.

    ``conv2d(interpolate(h, scale_factor=2, mode="nearest"), weight, padding=1)`` equals
    ``conv_transpose2d(h, upsampled_conv_kernel(weight), stride=2, padding=1)`` (up to float
    rounding): output row ``2m`` sees input rows ``m - 1`` (kernel row 0) and ``m`` (rows 1 + 2),
    row ``2m + 1`` sees rows ``m`` (rows 0 + 1) and ``m + 1`` (row 2), likewise for columns. The
    transposed convolution reads the small image and never builds the upsampled one: 4 instead of
    9 multiply-adds per output pixel and input channel.

    Parameters
    ----------
    weight : Tensor
        ``(out, in, 3, 3)`` convolution weight.

    Returns
    -------
    Tensor
        ``(in, out, 4, 4)``, differentiable in ``weight``.
    """
    taps = torch.tensor(_NEAREST_TAPS, dtype=weight.dtype, device=weight.device)
    return torch.einsum("ka,lb,oiab->iokl", taps, taps, weight)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of timesteps.

    Parameters
    ----------
    t : Tensor
        ``(B,)`` timesteps (int or float, in schedule units, e.g. 0..1000).
    dim : int
        Embedding size (even).

    Returns
    -------
    Tensor
        ``(B, dim)`` float32 embedding ``[sin(t*f_k), cos(t*f_k)]``.
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ConvBlock(nn.Module):
    """Two 3x3 convolutions with an activation, optionally modulated by a time embedding.

    The modulation ``h * (1 + scale) + shift`` is one value per channel, constant over space, so it
    keeps the block tile invariant.

    Parameters
    ----------
    in_ch, out_ch : int
        Input and output channels.
    activation : str
        Name of the activation after each convolution.
    emb_dim : int, optional
        Width of the time embedding; None (or 0): no modulation.
    """

    def __init__(self, in_ch: int, out_ch: int, activation: str, emb_dim: int | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.act = _activation(activation)
        self.modulation = nn.Linear(emb_dim, 2 * out_ch) if emb_dim else None

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        """Apply the block.

        Parameters
        ----------
        x : Tensor
            ``(B, in_ch, H, W)``.
        emb : Tensor, optional
            ``(B, emb_dim)`` time embedding (ignored by a block without modulation).

        Returns
        -------
        Tensor
            ``(B, out_ch, H, W)``.
        """
        folded = self._folded_conv1(emb)
        if folded is not None:
            return self._after_conv1(F.conv2d(x, *folded, padding=1), None)
        return self._after_conv1(self.conv1(x), emb)

    def _folded_conv1(self, emb: Tensor | None) -> tuple[Tensor, Tensor] | None:
        """The first convolution's weight and bias with the modulation folded in, or None.

        At inference, when every item of the batch has the same time embedding (a restore's
        sampler step), ``conv1(x) * (1 + scale) + shift`` is one convolution with weight
        ``W * (1 + scale)`` and bias ``b * (1 + scale) + shift``: one memory pass over the block's
        output less (the refiner's calls 1.01-1.07x faster, a SkelEM restore ~3-5%, RESULTS.md
        issue 13; equal within float rounding). Training (gradients on), exports, ``torch.compile``
        (which fuses the modulation itself) and mixed timesteps keep the plain graph.
        """
        if (
            self.modulation is None
            or emb is None
            or torch.is_grad_enabled()
            or torch.jit.is_tracing()
            or torch.compiler.is_compiling()  # exports too
        ):
            return None
        if emb.shape[0] > 1 and not torch.equal(emb, emb[:1].expand_as(emb)):
            return None
        scale, shift = self.modulation(emb[:1])[0].chunk(2)
        gain = 1 + scale
        return self.conv1.weight * gain[:, None, None, None], self.conv1.bias * gain + shift

    def forward_upsampled(self, h: Tensor, skip: Tensor, emb: Tensor | None = None) -> Tensor:
        """The block applied to ``cat([up(h), skip])``, ``up`` the 2x nearest upsampling, without
        building that input: the first convolution's weight splits into the part that reads
        ``up(h)``, applied to ``h`` as one transposed convolution (:func:`upsampled_conv_kernel`),
        and the part that reads ``skip``. Same function and parameters as ``forward`` on the
        concatenation (equal within float rounding, gradients too).

        Parameters
        ----------
        h : Tensor
            ``(B, C, H, W)``, the level below.
        skip : Tensor
            ``(B, in_ch - C, 2H, 2W)``.
        emb : Tensor, optional
            ``(B, emb_dim)`` time embedding.

        Returns
        -------
        Tensor
            ``(B, out_ch, 2H, 2W)``.
        """
        c = h.shape[1]
        folded = self._folded_conv1(emb)
        weight, bias = folded if folded is not None else (self.conv1.weight, self.conv1.bias)
        out = F.conv2d(skip, weight[:, c:], bias, padding=1)
        # in place: a convolution's backward needs its input, not its output
        out.add_(F.conv_transpose2d(h, upsampled_conv_kernel(weight[:, :c]), stride=2, padding=1))
        return self._after_conv1(out, None if folded is not None else emb)

    def _after_conv1(self, h: Tensor, emb: Tensor | None) -> Tensor:
        if self.modulation is not None and emb is not None:
            scale, shift = self.modulation(emb)[:, :, None, None].chunk(2, dim=1)
            h = torch.addcmul(shift, h, 1 + scale)  # h * (1 + scale) + shift, one pass
        h = _activate(self.act, h)
        return _activate(self.act, self.conv2(h))


class UNet2D(nn.Module):
    """A plain 2-D U-Net that is safe to run on tiles.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output batches ``(B, C, H, W)``.
    channels : int
        Feature channels at the first level; doubled at each level, capped at 128.
    depth : int
        Number of 2x downsamplings. ``H`` and ``W`` must be multiples of ``2**depth``.
    time_embedding : bool
        If true, ``forward(x, t)`` takes ``(B,)`` timesteps that modulate every block.
    residual_input : bool
        If true, the output is ``x[:, :1] + net(x)`` (the first input channel plus a learned
        correction). The last convolution starts at zero, so the untrained net is the identity
        on its first channel.
    activation : {"silu", "leaky_relu"}
    pooling : {"avg", "max"}
        2x2 downsampling.
    upsample : {"nearest", "bilinear"}
        2x upsampling, followed (after concatenating the skip) by the level's convolutions.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: int = 16,
        depth: int = 3,
        time_embedding: bool = False,
        residual_input: bool = False,
        activation: Literal["silu", "leaky_relu"] = "silu",
        pooling: Literal["avg", "max"] = "avg",
        upsample: Literal["nearest", "bilinear"] = "nearest",
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1 or channels < 1:
            raise ValueError("channel counts must be positive")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if pooling not in ("avg", "max"):
            raise ValueError(f"unknown pooling {pooling!r}; use 'avg' or 'max'")
        if upsample not in ("nearest", "bilinear"):
            raise ValueError(f"unknown upsample {upsample!r}; use 'nearest' or 'bilinear'")
        if residual_input and out_channels != 1:
            raise ValueError(
                "residual_input adds the first input channel, so out_channels must be 1"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = channels
        self.depth = depth
        self.time_embedding = time_embedding
        self.residual_input = residual_input
        self.activation = activation
        self.pooling = pooling
        self.upsample_mode = upsample

        widths = [min(channels * 2**level, MAX_CHANNELS) for level in range(depth + 1)]
        self.emb_dim = max(32, 4 * channels) if time_embedding else None
        if time_embedding:
            self.time_mlp = nn.Sequential(
                nn.Linear(self.emb_dim, self.emb_dim),
                nn.SiLU(),
                nn.Linear(self.emb_dim, self.emb_dim),
                nn.SiLU(),
            )
        self.encoders = nn.ModuleList()
        previous = in_channels
        for level in range(depth):
            self.encoders.append(ConvBlock(previous, widths[level], activation, self.emb_dim))
            previous = widths[level]
        self.bottleneck = ConvBlock(previous, widths[depth], activation, self.emb_dim)
        self.decoders = nn.ModuleList()
        for level in reversed(range(depth)):
            self.decoders.append(
                ConvBlock(
                    widths[level + 1] + widths[level], widths[level], activation, self.emb_dim
                )
            )
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self._init_weights(activation)

    @property
    def multiple(self) -> int:
        """Spatial sizes fed to :meth:`forward` must be a multiple of this (``2**depth``)."""
        return 2**self.depth

    def _init_weights(self, activation: str) -> None:
        slope = 0.1 if activation == "leaky_relu" else 0.0
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=slope, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, ConvBlock) and module.modulation is not None:
                # Start without modulation: scale 0, shift 0.
                nn.init.zeros_(module.modulation.weight)
                nn.init.zeros_(module.modulation.bias)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        if self.residual_input:
            nn.init.zeros_(self.head.weight)

    def architecture(self) -> tuple:
        """What the network's geometry depends on (not its widths or weights)."""
        return (
            self.in_channels,
            self.out_channels,
            self.depth,
            self.time_embedding,
            self.residual_input,
            self.activation,
            self.pooling,
            self.upsample_mode,
        )

    def slim_twin(self) -> UNet2D:
        """A network of this architecture (depth, pooling, upsampling, inputs), 1 base channel.

        Returns
        -------
        UNet2D
            A new, freshly initialised network with ``channels=1``.
        """
        return UNet2D(
            self.in_channels,
            self.out_channels,
            channels=1,
            depth=self.depth,
            time_embedding=self.time_embedding,
            residual_input=self.residual_input,
            activation=self.activation,
            pooling=self.pooling,
            upsample=self.upsample_mode,
        )

    def _down(self, x: Tensor) -> Tensor:
        if self.pooling == "max":
            return F.max_pool2d(x, 2)
        return F.avg_pool2d(x, 2)

    def _up(self, x: Tensor) -> Tensor:
        if self.upsample_mode == "bilinear":
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def _decode(self, block: ConvBlock, h: Tensor, skip: Tensor, emb: Tensor | None) -> Tensor:
        """One decoder level: ``block(cat([up(h), skip]))``.

        With nearest upsampling the block reads ``h`` through a transposed convolution
        (:meth:`ConvBlock.forward_upsampled`): neither the upsampled tensor nor the concatenation
        is built, and the upsampled part of the first convolution costs 4 instead of 9
        multiply-adds per pixel (restore and training both faster, RESULTS.md issue 13). Exports
        (ONNX, TorchScript) and bilinear upsampling keep the plain graph.
        """
        if (
            self.upsample_mode == "nearest"
            and not torch.jit.is_tracing()
            and not torch.compiler.is_exporting()
        ):
            return block.forward_upsampled(h, skip, emb)
        return block(torch.cat([self._up(h), skip], dim=1), emb)

    def forward(self, x: Tensor, t: Tensor | float | int | None = None) -> Tensor:
        """Run the network.

        Parameters
        ----------
        x : Tensor
            ``(B, in_channels, H, W)`` with ``H``, ``W`` multiples of :attr:`multiple`.
        t : Tensor, optional
            ``(B,)`` (or scalar) timesteps; required iff the net has a time embedding.

        Returns
        -------
        Tensor
            ``(B, out_channels, H, W)``.
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected a (B, {self.in_channels}, H, W) batch, got shape {tuple(x.shape)}"
            )
        height, width = x.shape[-2:]
        if height % self.multiple or width % self.multiple:
            raise ValueError(
                f"spatial size {height}x{width} is not a multiple of {self.multiple}; "
                "pad with pad_to_multiple or use apply_padded"
            )
        emb = None
        if self.time_embedding:
            if t is None:
                raise ValueError("this network has a time embedding: call it as model(x, t)")
            t = torch.as_tensor(t, device=x.device)
            if t.ndim == 0:
                t = t.expand(x.shape[0])
            mlp_dtype = self.time_mlp[0].weight.dtype
            emb = timestep_embedding(t.reshape(-1), self.emb_dim).to(mlp_dtype)
            emb = self.time_mlp(emb).to(x.dtype)
        h = x
        skips = []
        for block in self.encoders:
            h = block(h, emb)
            skips.append(h)
            h = self._down(h)
        h = self.bottleneck(h, emb)
        for block, skip in zip(self.decoders, reversed(skips), strict=True):
            h = self._decode(block, h, skip, emb)
        out = self.head(h)
        if self.residual_input:
            out = x[:, :1] + out
        return out


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model`` (all, or only those with ``requires_grad``).

    Parameters
    ----------
    model : nn.Module
    trainable_only : bool
        Count only parameters with ``requires_grad``.

    Returns
    -------
    int
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad the last two dims of ``x`` at the bottom/right up to a multiple of ``multiple``.

    Reflect padding is used (replicate when the image is too small to reflect).

    Parameters
    ----------
    x : Tensor
        ``(B, C, H, W)`` or ``(C, H, W)``.
    multiple : int
        Target divisor, e.g. ``model.multiple``.

    Returns
    -------
    (Tensor, (int, int))
        The padded tensor and the original ``(H, W)`` to crop back with ``[..., :H, :W]``.
    """
    if x.ndim not in (3, 4):
        raise ValueError(f"expected a (B, C, H, W) or (C, H, W) tensor, got shape {tuple(x.shape)}")
    if multiple < 1:
        raise ValueError(f"multiple must be positive, got {multiple}")
    height, width = x.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (height, width)
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (height, width)


def apply_padded(model: nn.Module, x: Tensor, *args: object, multiple: int | None = None) -> Tensor:
    """Pad ``x`` to the model's multiple, run ``model(x, *args)``, crop the output back.

    Parameters
    ----------
    model : nn.Module
    x : Tensor
        ``(B, C, H, W)`` or ``(C, H, W)`` input.
    *args
        Further arguments of ``model`` (e.g. the timestep).
    multiple : int, optional
        Padding divisor; defaults to ``model.multiple`` (1 when the model has none).

    Returns
    -------
    Tensor
        The model's output cropped to ``x``'s ``(H, W)``.
    """
    multiple = multiple if multiple is not None else int(getattr(model, "multiple", 1))
    padded, (height, width) = pad_to_multiple(x, multiple)
    return model(padded, *args)[..., :height, :width]


@torch.no_grad()
def _positive_weights(model: nn.Module) -> None:
    """Give every parameter a positive value (scaled by its fan-in) so no gradient path cancels."""
    generator = torch.Generator().manual_seed(0)
    for param in model.parameters():
        fan_in = max(1, param[0].numel()) if param.ndim > 1 else 1
        values = 0.5 + torch.rand(param.shape, generator=generator, dtype=torch.float64)
        param.copy_((values / fan_in).to(param.dtype))


def measured_receptive_field(
    model: nn.Module,
    multiple: int,
    size: int = 256,
    with_time: bool = False,
    positive_weights: bool = True,
    max_size: int = 2048,
) -> int:
    """Half-width in pixels of the input region one output pixel depends on, measured by backprop.

    For each phase ``k`` in ``0..multiple-1`` the output pixel ``(c+k, c+k)`` near the centre of a
    ``size x size`` input (``c`` a multiple of ``multiple``) is back-propagated; the answer is the
    largest distance along H or W from that pixel to an input pixel with a non-zero gradient.
    Rows and columns behave independently, so the diagonal phases cover every alignment.

    With ``positive_weights`` (default) the measurement runs on a float64 copy whose parameters
    are all positive, so no gradient cancels by chance (zero-initialised heads, max pooling):
    the result is the structural receptive field, valid for any weights (a :class:`UNet2D` is
    then probed through a one-channel twin of the same architecture, which is fast). The input grows
    (up to ``max_size``) when the gradient reaches its border.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(x)`` or, with ``with_time``, ``model(x, t)``; first input channel only
        is probed, all input channels are checked for gradient.
    multiple : int
        Alignment of the model's pooling grid (``2**depth``; 1 for a plain conv net).

    Returns
    -------
    int
        The receptive-field half-width: tiles need a halo at least this wide.
    """
    if positive_weights and isinstance(model, UNet2D):
        # The receptive field depends on the architecture, not on the widths: probe a slim twin,
        # once per architecture in a process (a client and its in-process worker both ask)
        key = (*model.architecture(), multiple, size, with_time, max_size)
        if key not in _RECEPTIVE_FIELDS:
            _RECEPTIVE_FIELDS[key] = _measure_receptive_field(
                model.slim_twin(), multiple, size, with_time, True, max_size
            )
        return _RECEPTIVE_FIELDS[key]
    return _measure_receptive_field(model, multiple, size, with_time, positive_weights, max_size)


def _measure_receptive_field(
    model: nn.Module,
    multiple: int,
    size: int,
    with_time: bool,
    positive_weights: bool,
    max_size: int,
) -> int:
    """:func:`_probe_receptive_field`, then the probe's freed buffers given back (once it has
    returned, so its tensors are freed): its float64 autograd buffers (~100 MiB) would otherwise
    stay in the process's resident size until the first block's end (RESULTS.md, issue 13, peak
    memory)."""
    try:
        return _probe_receptive_field(model, multiple, size, with_time, positive_weights, max_size)
    finally:
        release_free_memory()


_RECEPTIVE_FIELDS: dict[tuple, int] = {}


def _probe_receptive_field(
    model: nn.Module,
    multiple: int,
    size: int,
    with_time: bool,
    positive_weights: bool,
    max_size: int,
) -> int:
    """:func:`measured_receptive_field` without the per-architecture cache or the trim."""
    probe = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
    probe.eval()
    if positive_weights:
        _positive_weights(probe)
    in_channels = int(getattr(model, "in_channels", 1))
    size = max(size, 4 * multiple)
    while True:
        size = -(-size // multiple) * multiple
        centre = (size // 2) // multiple * multiple
        radius = 0
        generator = torch.Generator().manual_seed(0)
        for phase in range(multiple):
            x = torch.rand(1, in_channels, size, size, generator=generator, dtype=torch.float64)
            x.requires_grad_(True)
            args = (torch.full((1,), 10.0, dtype=torch.float64),) if with_time else ()
            out = probe(x, *args)
            row = col = centre + phase
            out[0, 0, row, col].backward()
            nonzero = (x.grad.abs().sum(dim=(0, 1)) > 0).nonzero()
            if nonzero.numel():
                radius = max(
                    radius,
                    int((nonzero[:, 0] - row).abs().max()),
                    int((nonzero[:, 1] - col).abs().max()),
                )
        if radius < size // 2 - multiple or size >= max_size:
            return radius
        size *= 2
