"""Per-call slice counts chosen by measurement on this machine, cached per machine.

A network call over ``n`` slices of ``h x w`` costs about ``n`` times one slice plus a fixed
overhead, but cache effects make the best ``n`` depend on the CPU, the thread count, the backend,
the network and the slice size. :func:`tuned_slices_per_call` times one call of each candidate
count (after a warm-up call) on random slices of the real size, keeps the fastest per slice, and
caches the choice in ``<user cache dir>/skelem/autotune.json`` under a key made of the CPU model,
the thread count, the backend, the network's shape and the slice size: the measurement is paid
once per machine and shape.

Opt-in: ``SKELEM_AUTOTUNE=1`` in the environment (or ``SliceEngine(autotune=True)``).
``SKELEM_CACHE_DIR`` moves the cache; deleting the file measures again. Outputs stay within float
rounding whatever the count (a call over 1 or 4 slices differs by ~1e-7 in PyTorch).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from skelem.atomic import atomic_path

CACHE_FILE = "autotune.json"
CANDIDATES = (1, 2, 4, 8)


def autotune_enabled() -> bool:
    """True when ``SKELEM_AUTOTUNE`` is set to 1/true/yes."""
    return os.environ.get("SKELEM_AUTOTUNE", "").strip().lower() in ("1", "true", "yes")


def cache_path() -> Path:
    """``$SKELEM_CACHE_DIR/autotune.json``, else the user cache dir's ``skelem/autotune.json``."""
    root = os.environ.get("SKELEM_CACHE_DIR")
    if not root:
        try:
            from platformdirs import user_cache_dir

            root = user_cache_dir("skelem")
        except ImportError:  # pragma: no cover - platformdirs ships with pip-installed tools
            root = str(Path.home() / ".cache" / "skelem")
    return Path(root) / CACHE_FILE


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def tune_key(network: torch.nn.Module, shape: tuple[int, int], device: torch.device) -> str:
    """The cache key: machine, threads, backend, network shape, padded slice size."""
    parts = [
        _cpu_name(),
        f"{os.cpu_count()} cpus",
        f"{torch.get_num_threads()} threads",
        str(device),
        getattr(network, "backend", type(network).__name__),
        f"in{getattr(network, 'in_channels', '?')}",
        f"ch{getattr(network, 'channels', '?')}",
        f"m{getattr(network, 'multiple', '?')}",
        f"{shape[0]}x{shape[1]}",
    ]
    return "|".join(parts)


def _read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, table: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(table, indent=1, sort_keys=True))
    except OSError:  # a read-only home: measure again next time
        pass


def measure(
    network: torch.nn.Module, shape: tuple[int, int], device: torch.device, limit: int
) -> dict[int, float]:
    """Seconds per slice of one call of each candidate count up to ``limit`` (after a warm-up)."""
    counts = [n for n in CANDIDATES if n <= max(1, limit)]
    in_channels = int(getattr(network, "in_channels", 1))
    timed = bool(getattr(network, "time_embedding", False))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(max(counts), in_channels, *shape, generator=generator).to(device)
    t = torch.full((max(counts),), 100, dtype=torch.long, device=device)
    seconds: dict[int, float] = {}
    with torch.inference_mode():
        network(x[:1], *((t[:1],) if timed else ()))
        for n in counts:
            start = time.perf_counter()
            network(x[:n], *((t[:n],) if timed else ()))
            seconds[n] = (time.perf_counter() - start) / n
    return seconds


def tuned_slices_per_call(
    network: torch.nn.Module, shape: tuple[int, int], device: torch.device, limit: int
) -> int:
    """The fastest slices per call of at most ``limit``, from the cached (else measured) table.

    Parameters
    ----------
    network : torch.nn.Module
        The network (or backend runner) called.
    shape : tuple of int
        Padded slice size ``(h, w)``.
    device : torch.device
        Where it runs.
    limit : int
        The most slices per call allowed (batch size and memory cap).

    Returns
    -------
    int
    """
    path = cache_path()
    key = tune_key(network, shape, device)
    table = _read_cache(path)
    entry = table.get(key)
    if entry is None:
        seconds = measure(network, shape, device, max(CANDIDATES))
        best = min(seconds, key=seconds.get)
        entry = {"best": best, "seconds_per_slice": {str(k): v for k, v in seconds.items()}}
        table[key] = entry
        _write_cache(path, table)
    allowed = {int(n): v for n, v in entry["seconds_per_slice"].items() if int(n) <= limit}
    return min(allowed, key=allowed.get) if allowed else 1
