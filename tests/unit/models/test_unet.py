"""The U-Net: shapes, identity at init, tile invariance and the measured receptive field."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from skelem.models.unet import (
    UNet2D,
    apply_padded,
    count_parameters,
    measured_receptive_field,
    pad_to_multiple,
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_output_shape(depth: int) -> None:
    net = UNet2D(2, 3, channels=4, depth=depth)
    x = torch.randn(2, 2, 32, 24)
    assert net(x).shape == (2, 3, 32, 24)
    assert net.multiple == 2**depth


def test_time_embedding_changes_the_output_per_timestep() -> None:
    net = UNet2D(3, 1, channels=4, depth=2, time_embedding=True)
    with torch.no_grad():  # the modulation starts at zero; give it weights
        for block in [*net.encoders, net.bottleneck, *net.decoders]:
            block.modulation.weight.normal_(0, 0.5)
    x = torch.randn(2, 3, 16, 16)
    out_a = net(x, torch.tensor([1, 500]))
    out_b = net(x, torch.tensor([1, 10]))
    assert out_a.shape == (2, 1, 16, 16)
    assert torch.allclose(out_a[0], out_b[0])
    assert not torch.allclose(out_a[1], out_b[1])
    assert net(x, 7).shape == (2, 1, 16, 16)  # a scalar timestep broadcasts
    with pytest.raises(ValueError, match="time embedding"):
        net(x)


def test_channels_double_and_cap_at_128() -> None:
    net = UNet2D(1, 1, channels=64, depth=3)
    assert net.encoders[1].conv1.out_channels == 128
    assert net.bottleneck.conv1.out_channels == 128


def test_residual_net_is_identity_at_init() -> None:
    net = UNet2D(3, 1, channels=4, depth=2, residual_input=True)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(net(x), x[:, :1])


def test_forward_refuses_sizes_off_the_multiple() -> None:
    net = UNet2D(1, 1, channels=4, depth=3)
    with pytest.raises(ValueError, match="multiple of 8"):
        net(torch.randn(1, 1, 20, 16))
    with pytest.raises(ValueError, match="expected a"):
        net(torch.randn(1, 2, 16, 16))


def test_pad_to_multiple_and_apply_padded() -> None:
    x = torch.randn(1, 1, 21, 30)
    padded, size = pad_to_multiple(x, 8)
    assert padded.shape == (1, 1, 24, 32) and size == (21, 30)
    assert torch.equal(padded[..., :21, :30], x)
    assert torch.equal(padded[..., 21, :30], x[..., 19, :])  # reflect
    tiny, _ = pad_to_multiple(torch.randn(1, 1, 2, 3), 8)  # too small to reflect: replicate
    assert tiny.shape == (1, 1, 8, 8)
    same, _ = pad_to_multiple(torch.randn(1, 1, 16, 16), 8)
    assert same.shape == (1, 1, 16, 16)
    net = UNet2D(1, 1, channels=4, depth=3, residual_input=True)
    assert torch.equal(apply_padded(net, x), x)


def test_count_parameters() -> None:
    conv = nn.Conv2d(2, 3, 3)
    assert count_parameters(conv) == 2 * 3 * 9 + 3
    conv.bias.requires_grad_(False)
    assert count_parameters(conv, trainable_only=True) == 2 * 3 * 9


def test_receptive_field_of_one_conv_is_one() -> None:
    assert measured_receptive_field(nn.Conv2d(1, 1, 3, padding=1), multiple=1, size=32) == 1


def test_receptive_field_grows_with_depth() -> None:
    rf1 = measured_receptive_field(UNet2D(1, 1, channels=2, depth=1), 2, size=64)
    rf2 = measured_receptive_field(UNet2D(1, 1, channels=2, depth=2), 4, size=64)
    assert 4 < rf1 < rf2 < 64


def _tiled(net: nn.Module, x: torch.Tensor, core: int, halo: int) -> torch.Tensor:
    """Run ``net`` on overlapping crops (aligned to the pooling grid) and keep their centres."""
    height, width = x.shape[-2:]
    out = torch.full_like(x[:, :1], float("nan"))
    for top in range(0, height, core):
        for left in range(0, width, core):
            r0, r1 = max(0, top - halo), min(height, top + core + halo)
            c0, c1 = max(0, left - halo), min(width, left + core + halo)
            tile = net(x[..., r0:r1, c0:c1])
            out[..., top : top + core, left : left + core] = tile[
                ..., top - r0 : top - r0 + core, left - c0 : left - c0 + core
            ]
    return out


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_tiled_inference_with_rf_halo_equals_untiled(pooling: str) -> None:
    net = UNet2D(1, 1, channels=4, depth=3, pooling=pooling, residual_input=True)
    with torch.no_grad():
        net.head.weight.normal_(0, 0.5)  # the zero-initialised head would hide the network
    multiple = net.multiple
    rf = measured_receptive_field(net, multiple, size=128)
    assert 30 < rf < 64  # depth 3, two 3x3 convs per level
    halo = -(-rf // multiple) * multiple
    x = torch.randn(1, 1, 128, 128)
    with torch.no_grad():
        full = net(x)
        tiled = _tiled(net, x, core=32, halo=halo)
        short = _tiled(net, x, core=32, halo=halo - 2 * multiple)
    assert torch.allclose(tiled, full, atol=1e-5, rtol=0)
    assert not torch.allclose(short, full, atol=1e-5, rtol=0)  # a too-small halo leaves seams


def test_time_net_is_tile_invariant() -> None:
    net = UNet2D(3, 1, channels=4, depth=2, time_embedding=True)
    with torch.no_grad():
        for block in [*net.encoders, net.bottleneck, *net.decoders]:
            block.modulation.weight.normal_(0, 0.5)
    rf = measured_receptive_field(net, net.multiple, size=64, with_time=True)
    halo = -(-rf // net.multiple) * net.multiple
    x = torch.randn(1, 3, 64, 64)
    t = torch.tensor([123])
    with torch.no_grad():
        full = net(x, t)
        tiled = _tiled(lambda tile: net(tile, t), x, core=16, halo=halo)
    assert torch.allclose(tiled, full, atol=1e-5, rtol=0)


def test_channels_last_gives_the_same_result() -> None:
    net = UNet2D(1, 1, channels=4, depth=2)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        ref = net(x)
        out = net.to(memory_format=torch.channels_last)(
            x.contiguous(memory_format=torch.channels_last)
        )
    assert torch.allclose(ref, out, atol=1e-5)


class _Wrapped(nn.Module):
    """Hides the UNet2D type so the receptive field is probed on the full network."""

    def __init__(self, net: UNet2D) -> None:
        super().__init__()
        self.net = net
        self.in_channels = net.in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize("upsample", ["nearest", "bilinear"])
def test_slim_twin_has_the_same_receptive_field(upsample: str) -> None:
    net = UNet2D(2, 1, channels=3, depth=2, upsample=upsample)
    full = measured_receptive_field(_Wrapped(net), net.multiple, size=64)
    assert measured_receptive_field(net, net.multiple, size=64) == full


def test_receptive_field_is_measured_once_per_architecture(monkeypatch) -> None:
    """A client and its in-process worker ask for the same network's field: measured once."""
    import skelem.models.unet as unet

    calls: list[int] = []
    measure = unet._measure_receptive_field

    def counting(*args, **kwargs):
        calls.append(1)
        return measure(*args, **kwargs)

    monkeypatch.setattr(unet, "_measure_receptive_field", counting)
    monkeypatch.setattr(unet, "_RECEPTIVE_FIELDS", {})
    first = measured_receptive_field(UNet2D(1, 1, channels=4, depth=2), 4, size=64)
    wider = measured_receptive_field(UNet2D(1, 1, channels=8, depth=2), 4, size=64)
    assert first == wider and len(calls) == 1  # the widths do not change the field
    deeper = measured_receptive_field(UNet2D(1, 1, channels=4, depth=3), 8, size=64)
    assert deeper > first and len(calls) == 2


@pytest.mark.parametrize("activation", ["silu", "leaky_relu"])
def test_inference_activations_in_place_give_the_training_values(activation: str) -> None:
    """Without autograd the activations overwrite the convolutions' outputs (in place): the same
    bits as the modules give with autograd, and training still gets every gradient."""
    torch.manual_seed(0)
    net = UNet2D(2, 1, channels=4, depth=2, time_embedding=True, activation=activation)
    net.eval()
    x, t = torch.randn(2, 2, 32, 32), torch.tensor([10.0, 500.0])
    with_grad = net(x, t)
    with torch.inference_mode():
        assert torch.equal(net(x, t), with_grad.detach())
    with torch.no_grad():
        assert torch.equal(net(x, t), with_grad.detach())
    with_grad.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("time_embedding", [False, True])
def test_decoders_read_the_level_below_through_a_transposed_convolution(
    layout: torch.memory_format, time_embedding: bool, monkeypatch
) -> None:
    """With nearest upsampling each decoder computes ``conv(cat(up(h), skip))`` as a convolution
    of the skip plus a transposed convolution of ``h``: the same outputs and gradients as the
    plain graph (within float rounding), in either layout, with and without autograd, and no
    4-D ``cat`` is built; bilinear upsampling and traced exports keep the plain graph."""
    import skelem.models.unet as unet

    torch.manual_seed(1)
    net = UNet2D(3, 1, channels=4, depth=3, time_embedding=time_embedding).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.15)
    net = net.to(memory_format=layout)
    x = torch.randn(2, 3, 40, 24).contiguous(memory_format=layout)
    args = (torch.tensor([3.0, 700.0]),) if time_embedding else ()
    cats = []
    real_cat = torch.cat
    monkeypatch.setattr(
        torch, "cat", lambda *a, **k: cats.append(a[0][0].ndim) or real_cat(*a, **k)
    )
    fused = net(x, *args)
    fused.square().mean().backward()
    fused_grads = [p.grad.clone() for p in net.parameters()]
    with torch.inference_mode():
        assert torch.equal(net(x, *args), fused.detach())  # same bits without autograd
    assert 4 not in cats  # the time embedding's own cat is 2-D
    net.zero_grad()
    monkeypatch.setattr(
        unet.UNet2D, "_decode", lambda self, b, h, skip, e: b(real_cat([self._up(h), skip], 1), e)
    )
    plain = net(x, *args)
    plain.square().mean().backward()
    assert torch.allclose(fused, plain, atol=1e-5, rtol=1e-5), (fused - plain).abs().max()
    assert not torch.equal(fused, plain)  # really another computation
    for p, g in zip(net.parameters(), fused_grads, strict=True):
        assert torch.allclose(g, p.grad, atol=1e-5, rtol=1e-4)
    monkeypatch.undo()
    monkeypatch.setattr(
        torch, "cat", lambda *a, **k: cats.append(a[0][0].ndim) or real_cat(*a, **k)
    )
    bilinear = UNet2D(3, 1, channels=4, depth=3, upsample="bilinear").eval()
    with torch.inference_mode():
        bilinear(x)
    assert cats.count(4) == 3
    traced = torch.jit.trace(UNet2D(3, 1, channels=4, depth=3).eval(), x, check_trace=False)
    assert "conv_transpose" not in str(traced.graph) and "aten::cat" in str(traced.graph)


def test_upsampled_conv_kernel_equals_a_convolution_after_nearest_upsampling() -> None:
    from skelem.models.unet import upsampled_conv_kernel

    torch.manual_seed(2)
    weight = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    h = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    up = torch.nn.functional.interpolate(h, scale_factor=2, mode="nearest")
    ref = torch.nn.functional.conv2d(up, weight, padding=1)
    out = torch.nn.functional.conv_transpose2d(
        h, upsampled_conv_kernel(weight), stride=2, padding=1
    )
    assert out.shape == ref.shape == (2, 5, 14, 12)
    assert torch.allclose(out, ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_inference_folds_the_time_modulation_into_the_first_convolution(
    layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one timestep for the whole batch and no autograd, each block's modulation is folded
    into its first convolution: the same output within float rounding; mixed timesteps,
    training and tracing keep the modulation as a separate step."""
    torch.manual_seed(0)
    net = UNet2D(2, 1, channels=4, depth=2, time_embedding=True).eval()
    net = net.to(memory_format=layout)
    x = torch.randn(3, 2, 32, 32).contiguous(memory_format=layout)
    t = torch.full((3,), 300.0)
    with_grad = net(x, t)
    block = net.encoders[0]
    emb = net.time_mlp(torch.randn(3, net.emb_dim))
    assert block._folded_conv1(emb) is None  # autograd on: the training graph
    with torch.no_grad():
        same = emb[:1].expand(3, -1)
        assert block._folded_conv1(same) is not None
        assert block._folded_conv1(emb) is None  # three different embeddings
        folded = net(x, t)
        for i in range(3):  # and each item alone
            torch.testing.assert_close(net(x[i : i + 1], t[:1]), folded[i : i + 1])
    torch.testing.assert_close(folded, with_grad.detach(), rtol=1e-5, atol=1e-5)
    import skelem.models.unet as unet_module

    modulations = []
    addcmul = torch.addcmul
    monkeypatch.setattr(
        unet_module.torch, "addcmul", lambda *a, **k: modulations.append(1) or addcmul(*a, **k)
    )
    with torch.no_grad():
        net(x, t)
        assert modulations == []  # every block folded
        net(x, torch.tensor([1.0, 2.0, 3.0]))
        assert len(modulations) == len(net.encoders) + 1 + len(net.decoders)
    with torch.no_grad():
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
        assert block._folded_conv1(emb[:1]) is None  # torch.compile / export: the plain graph
        monkeypatch.undo()
    traced = torch.jit.trace(net, (x, t), check_trace=False)
    with torch.no_grad():
        torch.testing.assert_close(traced(x, t), with_grad.detach(), rtol=1e-5, atol=1e-5)
