"""Inference backends: channels_last PyTorch and ONNX Runtime give PyTorch's outputs within 1e-4,
the same output call after call, and a clear error when the optional packages are missing."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from skelem.cli.main import cli
from skelem.config.models import build_config
from skelem.config.restore import RestoreOptions
from skelem.data.normalize import PercentileNormalizer
from skelem.errors import ConfigError
from skelem.inference.backends import (
    ChannelsLastRunner,
    PlainRunner,
    check_backend,
    prepare_network,
    source_network,
)
from skelem.inference.engine import SliceEngine
from skelem.io import open_volume, write_volume
from skelem.models.artifact import WEIGHT_FILES, ModelArtifact
from skelem.models.device import torch_threads
from skelem.models.factory import build_refiner, build_skeleton, save_weights
from skelem.models.unet import UNet2D, measured_receptive_field


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


def _net(time_embedding: bool, in_channels: int = 1, seed: int = 0) -> UNet2D:
    """A tiny U-Net with random (non-zero) weights everywhere, head and modulations included."""
    torch.manual_seed(seed)
    net = UNet2D(in_channels, 1, channels=4, depth=2, time_embedding=time_embedding)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.eval()


def _inputs(in_channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(3, in_channels, 32, 40, generator=g), torch.tensor([5, 200, 999])


@pytest.mark.parametrize("timed", [False, True])
def test_channels_last_matches_plain_pytorch_and_is_reproducible(timed: bool) -> None:
    channels = 3 if timed else 1
    x, t = _inputs(channels)
    args = (t,) if timed else ()
    with torch.inference_mode():
        expected = _net(timed, channels)(x, *args)
        runner = prepare_network(_net(timed, channels), "torch")
        assert isinstance(runner, ChannelsLastRunner)
        first, second = runner(x, *args), runner(x, *args)
    assert first.is_contiguous()
    assert (first - expected).abs().max() < 1e-4
    assert torch.equal(first, second)


@pytest.mark.parametrize("timed", [False, True])
def test_onnxruntime_matches_plain_pytorch_and_is_reproducible(timed: bool) -> None:
    pytest.importorskip("onnxruntime", reason="the optional onnxruntime package is not installed")
    pytest.importorskip("onnx", reason="the optional onnx package is not installed")
    channels = 3 if timed else 1
    x, t = _inputs(channels)
    args = (t,) if timed else ()
    with torch.inference_mode():
        expected = _net(timed, channels)(x, *args)
        runner = prepare_network(_net(timed, channels), "onnxruntime")
        first = runner(x, *args)
        # another batch and size than the export's example: dynamic axes
        other = runner(x[:1, :, :16, :24], *(a[:1] for a in args))
        second = runner(x, *args)
    assert first.shape == expected.shape
    assert (first - expected).abs().max() < 1e-4
    assert torch.equal(first, second)
    with torch.inference_mode():
        small = _net(timed, channels)(x[:1, :, :16, :24], *(a[:1] for a in args))
    assert (other - small).abs().max() < 1e-4


def test_runner_keeps_the_network_attributes_and_receptive_field() -> None:
    net = _net(False)
    radius = measured_receptive_field(net, net.multiple)
    runner = prepare_network(net, "torch-nchw")
    assert isinstance(runner, PlainRunner)
    assert (runner.channels, runner.multiple, runner.in_channels) == (4, 4, 1)
    assert source_network(runner) is net
    assert measured_receptive_field(source_network(runner), runner.multiple) == radius


def test_missing_onnxruntime_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match="pip install onnxruntime onnx"):
        prepare_network(_net(False), "onnxruntime")


def test_unknown_backend_and_onnxruntime_off_cpu_are_refused() -> None:
    with pytest.raises(ConfigError, match="Unknown backend"):
        check_backend("tensorrt")
    with pytest.raises(ConfigError, match="CPU only"):
        check_backend("onnxruntime", "cuda")
    with pytest.raises(ConfigError, match="Unknown backend"):
        RestoreOptions(backend="tensorrt")
    assert RestoreOptions().backend == "torch"


def test_engine_restores_the_same_slices_with_every_torch_backend() -> None:
    rng = np.random.default_rng(0)
    slices = rng.random((5, 29, 30), dtype=np.float32)
    outputs = []
    for backend in ("torch-nchw", "torch"):
        engine = SliceEngine(
            method="skeleton",
            device=torch.device("cpu"),
            multiple=4,
            skeleton=prepare_network(_net(False), backend),
            max_batch_pixels=2 * 32 * 32,  # two slices per call: several calls
        )
        outputs.append(engine.restore(slices, 0, 4, "xz", np.arange(5), 0))
    assert outputs[0].shape == slices.shape
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-4, rtol=0)


def _perturbed_model(directory: Path) -> Path:
    """A tiny skeleton + refiner model folder whose weights are all non-zero (no identity head)."""
    config = build_config(
        {
            "degradation": {"factor": 4},
            "skeleton": {"channels": 4, "depth": 2},
            "refiner": {"channels": 4, "depth": 2},
            "device": "cpu",
        }
    )
    directory.mkdir()
    torch.manual_seed(0)
    for name, build in (("skeleton", build_skeleton), ("refiner", build_refiner)):
        net = build(getattr(config, name))
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.05 * torch.randn_like(p))
        save_weights(net, directory / WEIGHT_FILES[name])
    artifact = ModelArtifact(
        directory, config, PercentileNormalizer(0.0, 255.0), ["skeleton", "refiner"]
    )
    artifact.save_manifest()
    return directory


def test_restore_command_backends_agree_and_bad_backend_exits_2(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    volume = tmp_path / "v.tif"
    write_volume(volume, (rng.random((9, 32, 32)) * 255).astype(np.uint8), (0.04, 0.01, 0.01))
    model = _perturbed_model(tmp_path / "model")
    backends = ["torch-nchw", "torch"]
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
        backends.append("onnxruntime")
    restored = {}
    for backend in backends:
        out = tmp_path / f"{backend}.tif"
        args = [
            "restore",
            str(volume),
            "--model",
            str(model),
            "-o",
            str(out),
            "-q",
            "--method",
            "skelem",
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--backend",
            backend,
        ]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, f"{result.stderr}\n{result.exception!r}"
        restored[backend] = np.asarray(open_volume(out).read())
    for backend in backends[1:]:  # 1e-4 of the normalised range (0..255 here)
        np.testing.assert_allclose(restored[backend], restored["torch-nchw"], atol=255e-4, rtol=0)
    bad = CliRunner().invoke(
        cli,
        [
            "restore",
            str(volume),
            "--model",
            str(model),
            "-o",
            str(tmp_path / "bad.tif"),
            "--backend",
            "tensorrt",
        ],
    )
    assert bad.exit_code == 2
    assert "tensorrt" in bad.output + bad.stderr
