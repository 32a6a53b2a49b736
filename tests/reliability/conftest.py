"""The inputs of the reliability tests: tiny volumes, broken files and model folders, made once.

Every volume is 9 x 32 x 32 (or smaller) so that a refused command, or the cubic restore of a
good one, takes milliseconds. Model folders hold untrained tiny networks: only the files matter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import torch
import zarr

from skelem.config.models import build_config
from skelem.data.normalize import PercentileNormalizer
from skelem.io import write_volume
from skelem.models.artifact import MANIFEST, WEIGHT_FILES, ModelArtifact
from skelem.models.device import torch_threads
from skelem.models.factory import build_skeleton, save_weights

FACTOR = 4
SHAPE = (9, 32, 32)  # Z, Y, X of the acquisition
VOXEL = (0.04, 0.01, 0.01)  # micrometer: anisotropy FACTOR
TINY = {"channels": 4, "depth": 2}


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


def make_model(directory: Path, factor: int = FACTOR, patch_size: int | None = None) -> Path:
    """A model folder with an untrained tiny skeleton (restores in milliseconds, no training);
    ``patch_size`` sets the skeleton's training patch (so that ``train`` accepts a tiny volume)."""
    sections: dict = {
        "degradation": {"factor": factor},
        "skeleton": TINY,
        "refiner": TINY,
        "diffusion_peer": TINY,
        "device": "cpu",
    }
    if patch_size is not None:
        sections["skeleton_training"] = {"patch_size": patch_size}
    config = build_config(sections)
    directory.mkdir()
    torch.manual_seed(0)
    save_weights(build_skeleton(config.skeleton), directory / WEIGHT_FILES["skeleton"])
    normalizer = PercentileNormalizer(0.0, 255.0)
    ModelArtifact(
        directory, config, normalizer, ["skeleton"], {"trained_on": "test"}
    ).save_manifest()
    return directory


def _broken_models(root: Path) -> None:
    (root / "model_empty").mkdir()
    corrupt = make_model(root / "model_corrupt")
    (corrupt / MANIFEST).write_text('{"format": "skelem-model", "config": ')
    newer = make_model(root / "model_newer")
    payload = json.loads((newer / MANIFEST).read_text())
    payload["format_version"] = 99
    (newer / MANIFEST).write_text(json.dumps(payload))
    tampered = make_model(root / "model_tampered") / WEIGHT_FILES["skeleton"]
    data = bytearray(tampered.read_bytes())
    data[-1] ^= 0x01  # one byte of the last tensor: same shapes, other values
    tampered.write_bytes(bytes(data))
    truncated = make_model(root / "model_truncated") / WEIGHT_FILES["skeleton"]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    make_model(root / "model_x8", factor=8)


def _arrays(root: Path, rng: np.random.Generator) -> None:
    good = rng.random(SHAPE, dtype=np.float32)
    np.save(root / "d1.npy", good[0, 0])
    np.save(root / "d2.npy", good[0])
    np.save(root / "d4.npy", np.stack([good, good]))
    np.save(root / "d5.npy", np.stack([np.stack([good, good])] * 2))
    np.save(root / "empty.npy", np.zeros((0, 32, 32), np.float32))
    with_nan = good.copy()
    with_nan[5, 10, 11] = np.nan
    np.save(root / "nan.npy", with_nan)
    with_inf = good.copy()
    with_inf[3, 0, 0] = -np.inf
    np.save(root / "inf.npy", with_inf)
    np.save(root / "bool.npy", good > 0.5)
    np.save(root / "complex.npy", good.astype(np.complex64))
    np.save(root / "object.npy", np.array([[["a"] * 4] * 4] * 3, dtype=object), allow_pickle=True)
    np.save(root / "two_slices.npy", good[:2])
    np.save(root / "constant.npy", np.full(SHAPE, 7, np.uint8))
    (root / "text.npy").write_text("this is a text file, not a NumPy array\n")


def _files(root: Path, acquisition: np.ndarray) -> None:
    stack = np.zeros((17, 64, 64), np.uint8)
    tifffile.imwrite(root / "stack17.tif", stack, imagej=True, metadata={"axes": "ZYX"})
    (root / "truncated.tif").write_bytes((root / "stack17.tif").read_bytes()[:5000])
    (root / "stack17.tif").unlink()
    (root / "garbage.tif").write_bytes(b"not a tiff at all " * 64)
    (root / "empty.tif").write_bytes(b"")
    group = zarr.open_group(str(root / "plain.zarr"), mode="w", zarr_format=2)
    group.create_array("raw", shape=SHAPE, dtype="uint8", chunks=SHAPE)[...] = acquisition
    with h5py.File(root / "data.h5", "w") as handle:
        handle["raw"] = acquisition
        handle.create_group("group")


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of every input: ``v.tif`` (good, factor 4 from its voxel size), the same volume
    as ``v.ome.zarr`` and ``v.h5:/raw``, broken arrays and files, and model folders."""
    return build_inputs(tmp_path_factory.mktemp("inputs"))


def build_inputs(root: Path) -> Path:
    """Write every input of the reliability tests into the existing folder ``root`` (see
    :func:`inputs`); also used by ``benchmarks/bad_input_table.py``."""
    rng = np.random.default_rng(0)
    acquisition = (rng.random(SHAPE) * 255).astype(np.uint8)
    for name in ("v.tif", "v.ome.zarr", "v.h5:/raw"):
        write_volume(root / name, acquisition, VOXEL)
    (root / "link.tif").symlink_to(root / "v.tif")
    (root / "sub").mkdir()
    _arrays(root, rng)
    _files(root, acquisition)
    make_model(root / "model")
    _broken_models(root)
    return root
