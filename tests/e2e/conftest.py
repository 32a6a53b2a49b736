"""Volumes of the end-to-end tests: an isotropic phantom, its x4 acquisition, broken inputs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from .cli_helpers import assert_success, single_thread, skelem

FACTOR = 4
ISO_SHAPE = (33, 48, 48)  # Z, Y, X of the isotropic phantom
ISO_VOXEL = 0.008  # micrometer, not the phantom default (0.01) so the option is seen to work


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with single_thread():
        yield


@dataclass(frozen=True)
class Volumes:
    """Files written once per session."""

    iso: Path  # isotropic EM phantom, ISO_SHAPE, voxel ISO_VOXEL
    aniso: Path  # iso simulated at FACTOR with profile none: 9 x 48 x 48, voxel 4*ISO_VOXEL in Z
    bad: Path  # folder of unusable inputs (see _write_bad_inputs)


def _write_bad_inputs(folder: Path) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir()
    np.save(folder / "flat.npy", rng.random((40, 48), dtype=np.float32))
    np.save(folder / "stack4d.npy", rng.random((2, 9, 48, 48), dtype=np.float32))
    np.save(folder / "complex.npy", np.ones((9, 48, 48), np.complex64))
    with_nan = rng.random((9, 48, 48), dtype=np.float32)
    with_nan[5, 10, 11] = np.nan
    np.save(folder / "nan.npy", with_nan)
    with_inf = rng.random((9, 48, 48), dtype=np.float32)
    with_inf[3, 0, 0] = np.inf
    np.save(folder / "inf.npy", with_inf)
    np.save(folder / "two_slices.npy", rng.random((2, 48, 48), dtype=np.float32))
    np.save(folder / "unscaled.npy", rng.random((9, 48, 48), dtype=np.float32))  # no voxel size
    np.save(folder / "thin16.npy", rng.random((16, 48, 48), dtype=np.float32))
    (folder / "garbage.tif").write_bytes(b"not a tiff at all " * 64)
    (folder / "garbage.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"broken" * 100)
    (folder / "garbage.npy").write_bytes(b"definitely not numpy" * 10)
    with h5py.File(folder / "data.h5", "w") as handle:
        handle["raw"] = rng.random((9, 48, 48), dtype=np.float32)
        handle.create_group("group")


@pytest.fixture(scope="session")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> Volumes:
    root = tmp_path_factory.mktemp("volumes")
    iso, aniso = root / "iso.tif", root / "aniso.tif"
    shape = ",".join(map(str, ISO_SHAPE))
    assert_success(
        skelem(
            "phantom",
            "-o",
            iso,
            "--shape",
            shape,
            "--seed",
            3,
            "--voxel-size",
            f"{ISO_VOXEL},{ISO_VOXEL},{ISO_VOXEL}",
        )
    )
    assert_success(skelem("simulate", iso, "-o", aniso, "--factor", FACTOR))
    _write_bad_inputs(root / "bad")
    return Volumes(iso=iso, aniso=aniso, bad=root / "bad")
