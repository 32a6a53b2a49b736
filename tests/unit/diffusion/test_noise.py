"""Noise seeded by global coordinates: tiles agree on overlaps, statistics are standard normal."""

from __future__ import annotations

import time

import numpy as np
import torch

from skelem.diffusion.noise import coordinate_noise, coordinate_noise_batch


def test_overlapping_windows_agree() -> None:
    a = coordinate_noise((40, 50), (100, 200), key=(0, 7), seed=3)
    b = coordinate_noise((40, 50), (120, 230), key=(0, 7), seed=3)
    assert torch.equal(a[20:, 30:], b[:20, :20])
    assert a.shape == (40, 50) and a.dtype == torch.float32


def test_seed_and_key_change_the_noise() -> None:
    base = coordinate_noise((32, 32), (0, 0), key=(1, 2), seed=0)
    assert torch.equal(base, coordinate_noise((32, 32), (0, 0), key=(1, 2), seed=0))
    for other in (
        coordinate_noise((32, 32), (0, 0), key=(1, 2), seed=1),
        coordinate_noise((32, 32), (0, 0), key=(2, 1), seed=0),
        coordinate_noise((32, 32), (0, 0), key=(1, 3), seed=0),
    ):
        assert float((base - other).abs().mean()) > 0.5


def test_statistics_are_standard_normal() -> None:
    noise = coordinate_noise((256, 256), (0, 0), key=(0,), seed=0, dtype=torch.float64).numpy()
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 1) < 0.01
    assert abs(np.mean(noise**4) - 3) < 0.1  # Gaussian kurtosis
    for shifted in (noise[1:] * noise[:-1], noise[:, 1:] * noise[:, :-1]):
        assert abs(shifted.mean()) < 0.01  # neighbours uncorrelated


def test_batch_matches_single_windows() -> None:
    batch = coordinate_noise_batch((8, 8), [(0, 0), (4, 4)], [(1,), (2,)], seed=5)
    assert batch.shape == (2, 1, 8, 8)
    assert torch.equal(batch[1, 0], coordinate_noise((8, 8), (4, 4), (2,), 5))


def test_a_million_values_are_fast() -> None:
    best = float("inf")
    for _ in range(3):  # best of three: the machine is shared
        start = time.perf_counter()
        coordinate_noise((1000, 1000), (0, 0), key=(0,), seed=0)
        best = min(best, time.perf_counter() - start)
    assert best < 0.5


def test_voxel_noise_is_one_volume_seen_from_both_planes() -> None:
    """Every XZ slice (at y) and YZ slice (at x) of a 6 x 5 x 7 block read one noise volume."""
    from skelem.diffusion.noise import voxel_noise_numpy

    nz, ny, nx, z0, y0, x0 = 6, 5, 7, 10, 30, 50
    from_xz = np.stack(
        [voxel_noise_numpy("xz", y0 + j, (nz, nx), (z0, x0), seed=4) for j in range(ny)], axis=1
    )  # (z, y, x)
    from_yz = np.stack(
        [voxel_noise_numpy("yz", x0 + i, (nz, ny), (z0, y0), seed=4) for i in range(nx)], axis=2
    )
    np.testing.assert_array_equal(from_xz, from_yz)
    other_seed = voxel_noise_numpy("xz", y0, (nz, nx), (z0, x0), seed=5)
    assert np.abs(other_seed - from_xz[:, 0]).mean() > 0.5
    big = voxel_noise_numpy("xz", 3, (400, 500), (0, 0), seed=0)
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1) < 0.02
    assert abs(np.corrcoef(big[:, :-1].ravel(), big[:, 1:].ravel())[0, 1]) < 0.02
