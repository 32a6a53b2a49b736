"""Autotuned slices per call: measured once, cached per machine, within the caller's limit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from skelem.inference import autotune
from skelem.inference.engine import SliceEngine


class _Timed(torch.nn.Module):
    """A stand-in network: a call costs 50 ms plus 1 ms per slice (larger calls win per slice)."""

    in_channels, channels, multiple, time_embedding = 1, 16, 4, False

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        time.sleep(0.050 + 0.001 * x.shape[0])
        return x.clone()


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKELEM_CACHE_DIR", str(tmp_path))
    return tmp_path / autotune.CACHE_FILE


def test_measured_once_cached_and_limited(cache: Path) -> None:
    net = _Timed()
    device = torch.device("cpu")
    assert autotune.tuned_slices_per_call(net, (32, 32), device, limit=4) == 4
    calls = net.calls
    assert calls == 1 + len(autotune.CANDIDATES)  # warm-up + one call per candidate
    table = json.loads(cache.read_text())
    (key,) = table
    assert key == autotune.tune_key(net, (32, 32), device) and table[key]["best"] == 8
    assert autotune.tuned_slices_per_call(net, (32, 32), device, limit=2) == 2
    assert net.calls == calls  # the cached table, no new measurement


def test_engine_autotune_is_opt_in_and_keeps_outputs(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SKELEM_AUTOTUNE", raising=False)
    device = torch.device("cpu")
    assert SliceEngine(method="skeleton", device=device, multiple=4).autotune is False
    monkeypatch.setenv("SKELEM_AUTOTUNE", "1")
    net = _Timed()
    tuned = SliceEngine(method="skeleton", device=device, multiple=4, skeleton=net)
    plain = SliceEngine(method="skeleton", device=device, multiple=4, skeleton=net, autotune=False)
    assert tuned.autotune is True
    assert tuned.slices_per_call(30, 30, net) == 8  # 8 fits the batch size and the budget
    slices = np.random.default_rng(0).random((5, 30, 30), dtype=np.float32)
    args = (0, 4, "xz", np.arange(5), 0)
    np.testing.assert_array_equal(tuned.restore(slices, *args), plain.restore(slices, *args))
    assert cache.exists()
