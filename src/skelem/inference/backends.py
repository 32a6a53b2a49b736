"""Inference backends: how a loaded network is run during restoration.

``torch`` (default): the PyTorch network with its weights and activations in ``channels_last``
memory format (NHWC), which oneDNN's CPU convolutions run without reordering every activation;
on this project's CPU it is 1.2-1.4x faster than the default NCHW layout, outputs equal within
float rounding (benchmarks/RESULTS.md, issue 13 lever table). ``torch-nchw``: the plain layout,
kept for comparison. ``onnxruntime``: the network exported to ONNX and run by ONNX Runtime's CPU
execution provider (an optional dependency, ``pip install onnxruntime onnx``); outputs equal
PyTorch's within 1e-4 (tested).

Every backend is deterministic: the same input gives the same output, call after call.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch

from skelem.config.choices import BACKENDS
from skelem.errors import ConfigError

DEFAULT_BACKEND = "torch"  # RESTORE_DEFAULTS["backend"]


class NetworkRunner(torch.nn.Module):
    """A network prepared for one backend, called like the network: ``runner(x, t=None)``.

    Keeps the attributes restoration reads from the network (``channels``, ``multiple``,
    ``in_channels``, ``out_channels``, ``time_embedding``) and the original module as
    :attr:`source` (for its receptive field and weights).

    Parameters
    ----------
    source : torch.nn.Module
        The network in eval mode.
    """

    backend = "torch"

    def __init__(self, source: torch.nn.Module) -> None:
        super().__init__()
        self.source = source
        for name in ("channels", "multiple", "in_channels", "out_channels", "time_embedding"):
            if hasattr(source, name):
                object.__setattr__(self, name, getattr(source, name))


class ChannelsLastRunner(NetworkRunner):
    """The PyTorch network with weights and activations in ``channels_last`` (NHWC) format."""

    backend = "torch"

    def __init__(self, source: torch.nn.Module) -> None:
        super().__init__(source.to(memory_format=torch.channels_last))

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """Run the network on ``x`` (any layout) and return a contiguous NCHW output."""
        x = x.contiguous(memory_format=torch.channels_last)
        out = self.source(x) if t is None else self.source(x, t)
        return out.contiguous()


class PlainRunner(NetworkRunner):
    """The PyTorch network as loaded (NCHW)."""

    backend = "torch-nchw"

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """Run the network unchanged."""
        return self.source(x) if t is None else self.source(x, t)


def _import_onnxruntime():
    try:
        import onnx  # noqa: F401 - torch.onnx.export needs it
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "The onnxruntime backend needs the optional packages onnxruntime and onnx: "
            "pip install onnxruntime onnx (or use --backend torch)."
        ) from None
    return onnxruntime


class OnnxRuntimeRunner(NetworkRunner):
    """The network exported to ONNX (dynamic batch and size) and run by ONNX Runtime on the CPU.

    Parameters
    ----------
    source : torch.nn.Module
        The network (CPU, eval mode). A time-conditioned network takes ``t`` as a second input.
    threads : int, optional
        Intra-op threads of the session; default: ``torch.get_num_threads()``.
    """

    backend = "onnxruntime"

    def __init__(self, source: torch.nn.Module, threads: int | None = None) -> None:
        super().__init__(source)
        ort = _import_onnxruntime()
        self.timed = bool(getattr(source, "time_embedding", False))
        multiple = int(getattr(source, "multiple", 8))
        example = (torch.zeros(1, int(getattr(source, "in_channels", 1)), multiple, multiple),)
        names = ["x"]
        axes = {
            "x": {0: "batch", 2: "height", 3: "width"},
            "y": {0: "batch", 2: "height", 3: "width"},
        }
        if self.timed:
            example = (*example, torch.zeros(1, dtype=torch.float32))
            names.append("t")
            axes["t"] = {0: "batch"}
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about the shape checks
            torch.onnx.export(
                source.cpu(),
                example,
                buffer,
                dynamo=False,
                input_names=names,
                output_names=["y"],
                dynamic_axes=axes,
                opset_version=17,
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            buffer.getvalue(), options, providers=["CPUExecutionProvider"]
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """Run the session on ``x`` (CPU float32) and ``t`` (float32 timesteps, one per item)."""
        feeds = {"x": np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)}
        if self.timed:
            if t is None:
                raise ValueError("this network has a time embedding: call it as model(x, t)")
            times = torch.as_tensor(t).to(torch.float32).reshape(-1)
            if times.numel() == 1:
                times = times.expand(x.shape[0])
            feeds["t"] = np.ascontiguousarray(times.numpy())
        return torch.from_numpy(self.session.run(None, feeds)[0]).to(x.device)


def check_backend(name: str, device: torch.device | str = "cpu") -> str:
    """Validate a backend name for ``device``; return it.

    Raises
    ------
    ConfigError
        Unknown backend, or ONNX Runtime asked for a non-CPU device.
    """
    if name not in BACKENDS:
        raise ConfigError(f"Unknown backend {name!r}; use one of {', '.join(BACKENDS)}.")
    if name == "onnxruntime" and torch.device(device).type != "cpu":
        raise ConfigError("The onnxruntime backend runs on the CPU only; use --device cpu.")
    return name


def prepare_network(
    net: torch.nn.Module, backend: str = DEFAULT_BACKEND, device: torch.device | str = "cpu"
) -> NetworkRunner:
    """Wrap a loaded network (eval mode) for ``backend`` (see :data:`BACKENDS`).

    Parameters
    ----------
    net : torch.nn.Module
        The network, on ``device``, in eval mode, without gradients.
    backend : str
        ``torch`` (channels_last), ``torch-nchw`` or ``onnxruntime``.
    device : torch.device or str
        Where the network runs.

    Returns
    -------
    NetworkRunner
        Called as the network; ``.source`` is ``net``.
    """
    check_backend(backend, device)
    if backend == "onnxruntime":
        return OnnxRuntimeRunner(net)
    if backend == "torch-nchw":
        return PlainRunner(net)
    return ChannelsLastRunner(net)


def source_network(net: torch.nn.Module) -> torch.nn.Module:
    """The PyTorch module behind a :class:`NetworkRunner` (``net`` itself otherwise)."""
    return net.source if isinstance(net, NetworkRunner) else net
