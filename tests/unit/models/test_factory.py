"""Networks built from configs; safetensors weights round-trip and fail with one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from skelem.config.models import NetworkConfig
from skelem.errors import ModelError
from skelem.models.factory import (
    build_diffusion_peer,
    build_refiner,
    build_skeleton,
    load_weights,
    save_weights,
)

TINY = NetworkConfig(channels=4, depth=2)


def test_built_networks_have_the_documented_inputs() -> None:
    skeleton, refiner, peer = build_skeleton(TINY), build_refiner(TINY), build_diffusion_peer(TINY)
    x = torch.randn(2, 1, 16, 16)
    t = torch.tensor([3, 4])
    assert torch.equal(skeleton(x), x)  # residual on the interpolated slice, identity at init
    assert refiner(torch.randn(2, 3, 16, 16), t).shape == (2, 1, 16, 16)
    assert peer(torch.randn(2, 2, 16, 16), t).shape == (2, 1, 16, 16)
    assert (skeleton.channels, skeleton.depth) == (4, 2)
    assert refiner.time_embedding and peer.time_embedding and not skeleton.time_embedding


def test_weights_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = build_refiner(TINY)
    path = tmp_path / "refiner.safetensors"
    save_weights(source, path, metadata={"role": "refiner"})
    assert [p.name for p in tmp_path.iterdir()] == ["refiner.safetensors"]  # no partial left
    target = build_refiner(TINY)
    assert load_weights(target, path) is target
    for (name, a), (_, b) in zip(
        source.state_dict().items(), target.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_weights_of_another_network_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(build_skeleton(TINY), path)
    with pytest.raises(ModelError, match="does not match the configured network.*shape"):
        load_weights(build_skeleton(NetworkConfig(channels=8, depth=2)), path)
    with pytest.raises(ModelError, match="does not match the configured network.*missing"):
        load_weights(build_skeleton(NetworkConfig(channels=4, depth=3)), path)
    with pytest.raises(ModelError, match="does not match the configured network.*unexpected"):
        load_weights(build_skeleton(NetworkConfig(channels=4, depth=1)), path)


def test_corrupt_or_missing_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header at all")
    with pytest.raises(ModelError, match="corrupt") as info:
        load_weights(build_skeleton(TINY), path)
    assert "\n" not in str(info.value)
    good = tmp_path / "good.safetensors"
    save_weights(build_skeleton(TINY), good)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ModelError, match="corrupt"):
        load_weights(build_skeleton(TINY), truncated)
    with pytest.raises(ModelError, match="does not exist"):
        load_weights(build_skeleton(TINY), tmp_path / "absent.safetensors")


def test_a_failed_save_leaves_the_previous_weights_and_no_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "skeleton.safetensors"
    save_weights(build_skeleton(TINY), path)
    before = path.read_bytes()
    write_bytes = Path.write_bytes

    def half_written(self: Path, data: bytes) -> int:  # the file is serialised, then written
        write_bytes(self, bytes(data[: len(data) // 2]))
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", half_written)
    with pytest.raises(OSError, match="disk full"):
        save_weights(build_skeleton(TINY), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["skeleton.safetensors"]
