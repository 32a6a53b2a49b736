"""Choosing the torch device from a user-facing name.

The names are ``auto``, ``cpu``, ``cuda``, ``cuda:1`` and ``mps``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from skelem.errors import ConfigError

_KNOWN = ("cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """Return the torch device for ``name``.

    Parameters
    ----------
    name : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or
        ``"mps"``. Case and surrounding spaces are ignored.

    Returns
    -------
    torch.device

    Raises
    ------
    ConfigError
        The name is not a device, or the requested accelerator is not available on this machine.
    """
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"Unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type not in _KNOWN:
        raise ConfigError(f"Unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps.")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"Device {name!r} was requested but CUDA is not available on this machine; "
                "use --device cpu or auto."
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"Device {name!r} does not exist; this machine has {count} CUDA device(s)."
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"Device {name!r} was requested but MPS is not available on this machine; "
            "use cpu or auto."
        )
    return device


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch on ``count`` CPU threads inside the block, restoring the previous setting after.

    On a machine shared with other work an over-subscribed thread pool makes small networks 10-25x
    slower than a single thread; tests and parallel benchmark jobs use ``torch_threads(1)``.

    Parameters
    ----------
    count : int
        Number of intra-op threads (at least 1).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(count)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def cpu_fast_layout(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with its convolution weights in channels_last layout when it runs on the CPU.

    oneDNN's convolutions run faster in that layout (NHWC; inputs in the usual layout are
    converted by the first convolution, outputs follow the weights). Training steps measured
    1.1-1.2x faster with :func:`skelem.memory.set_malloc_reuse` (benchmarks/RESULTS.md, issue 13);
    the results are equal to the plain layout's within float rounding and bit-identical from run
    to run. Converted in place; other devices are left as they are.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    torch.nn.Module
        The same module.
    """
    first = next(model.parameters(), None)
    if first is not None and first.device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    return model
