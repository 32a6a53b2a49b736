"""Self-supervised (U, P) pairs from lateral slices."""

from __future__ import annotations

import numpy as np
import pytest

from skelem.data.normalize import PercentileNormalizer
from skelem.data.pairs import (
    MixedPairSampler,
    PairSampler,
    ReferencePlanes,
    axial_pair_samplers,
)
from skelem.data.phantoms import em_phantom
from skelem.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    image, _ = em_phantom((8, 64, 72), seed=0)
    return (image * 255).astype(np.uint8)


def make(volume, **kwargs) -> PairSampler:
    options = {"factor": 4, "patch_size": 24, "seed": 0} | kwargs
    return PairSampler(volume, **options)


def test_shapes_and_mask(volume):
    u, p, rows = make(volume).sample(3, return_rows=True)
    assert u.shape == p.shape == (3, 1, 24, 24)
    assert u.dtype == p.dtype == np.float32
    assert rows.shape == (3, 1, 24, 1) and rows.dtype == bool
    mask = rows[0, 0, :, 0]
    assert mask.sum() == 6
    assert np.diff(np.flatnonzero(mask)).tolist() == [4] * 5
    assert (rows == rows[:1]).all()  # one phase per batch


def test_deterministic_from_seed(volume):
    first = make(volume).sample(4)
    second = make(volume).sample(4)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    other = make(volume, seed=1).sample(4)
    assert not np.array_equal(first[1], other[1])
    with_rng = make(volume).sample(4, rng=np.random.default_rng([7, 3]))
    again = make(volume, seed=5).sample(4, rng=np.random.default_rng([7, 3]))
    np.testing.assert_array_equal(with_rng[0], again[0])


def test_measured_rows_of_u_are_the_target_rows(volume):
    sampler = make(volume)
    for _ in range(3):  # several batches, so several phases
        u, p, rows = sampler.sample(4, return_rows=True)
        mask = rows[0, 0, :, 0]
        np.testing.assert_array_equal(u[:, :, mask], p[:, :, mask])
        assert not np.allclose(u[:, :, ~mask], p[:, :, ~mask])


def test_box_profile_averages_the_target_at_measured_rows(volume):
    u, p, rows = make(volume, profile="box", thickness=3, foreground_bias=False).sample(
        4, return_rows=True
    )
    inner = np.flatnonzero(rows[0, 0, :, 0])
    inner = inner[(inner >= 1) & (inner <= 22)]
    expected = (p[:, :, inner - 1] + p[:, :, inner] + p[:, :, inner + 1]) / 3
    np.testing.assert_allclose(u[:, :, inner], expected, atol=1e-5)


def test_u_is_smoother_along_rows_than_columns(volume):
    u, p = make(volume, foreground_bias=False).sample(16)
    energy_rows = np.mean(np.diff(u, axis=2) ** 2)
    energy_cols = np.mean(np.diff(u, axis=3) ** 2)
    assert energy_rows < 0.7 * energy_cols
    assert energy_rows < np.mean(np.diff(p, axis=2) ** 2)


def test_only_the_needed_window_is_read(volume):
    reads: list[tuple[int, ...]] = []

    class Lazy:
        shape, dtype = volume.shape, volume.dtype

        def __getitem__(self, key):
            out = volume[key]
            reads.append(out.shape)
            return out

    sampler = make(Lazy(), normalizer=PercentileNormalizer(0.0, 255.0))
    reads.clear()
    sampler.sample(2)
    assert reads and all(np.prod(shape) <= sampler.window_rows * 24 for shape in reads)


def test_foreground_bias_prefers_structure(rng):
    volume = np.full((4, 64, 128), 100.0, dtype=np.float32)
    volume[:, :, 64:] += rng.normal(0, 30, size=(4, 64, 64))
    volume[:, :, :64] += rng.normal(0, 1, size=(4, 64, 64))
    biased = make(volume, patch_size=16).sample(32)[1].std(axis=(1, 2, 3)).mean()
    plain = (
        make(volume, patch_size=16, foreground_bias=False).sample(32)[1].std(axis=(1, 2, 3)).mean()
    )
    assert biased > 1.2 * plain


def test_too_small_volume_is_refused(volume):
    with pytest.raises(InputError, match="smaller --patch-size"):
        make(volume[:, :30, :30])
    with pytest.raises(InputError, match="smaller --patch-size"):
        make(volume, patch_size=64)


def test_thin_plane_uses_the_long_axis_and_2d_input(volume):
    thin = volume[:, :26, :]  # too short for rows along Y, fine with rows along X
    sampler = make(thin)
    assert sampler.describe()["orientations"] == ["x"]
    assert sampler.sample(2)[0].shape == (2, 1, 24, 24)
    assert make(volume[0]).sample(2)[0].shape == (2, 1, 24, 24)


# -- true Z pairs from an isotropic reference, and mixed batches ------------------------------


def z_constant(volume: np.ndarray, depth: int = 48) -> np.ndarray:
    """An isotropic-looking reference whose every XY slice is the same: constant along Z."""
    return np.repeat(volume[:1], depth, axis=0)


def test_axial_pairs_degrade_the_reference_along_z(volume):
    # constant along Z: degrading along Z loses nothing, so U == P; along Y it would not
    flat = z_constant(volume)
    for sampler in axial_pair_samplers(ReferencePlanes.read(flat), 4, patch_size=24, seed=0):
        u, p = sampler.sample(4)
        np.testing.assert_allclose(u, p, atol=1e-5)
        assert p.std() > 0.05  # real lateral structure in the columns
    u, p = make(flat).sample(4)  # the volume's own XY pairs of the same data differ
    assert not np.allclose(u, p, atol=1e-3)
    # varying along Z only: the targets' rows vary, their columns do not
    ramp = np.broadcast_to(
        (np.sin(np.arange(48) / 2.0) * 100 + 128)[:, None, None], (48, 40, 40)
    ).astype(np.uint8)
    xz, yz = axial_pair_samplers(ReferencePlanes.read(ramp), 4, patch_size=24, seed=0)
    for sampler in (xz, yz):
        p = sampler.sample(2)[1]
        assert np.ptp(p[:, 0, :, 0]) > 0.5 and np.ptp(p[:, 0], axis=-1).max() < 1e-6


def test_axial_pairs_refuse_a_short_reference(volume):
    with pytest.raises(InputError, match="too small for true Z pairs"):
        axial_pair_samplers(ReferencePlanes.read(z_constant(volume, depth=20)), 4, patch_size=24)
    with pytest.raises(InputError, match="3-D"):
        ReferencePlanes.read(volume[0])


def test_mixed_batches_follow_the_weights_and_share_one_phase(volume):
    flat = z_constant(volume)
    own, (xz, yz) = (
        make(volume),
        axial_pair_samplers(ReferencePlanes.read(flat), 4, patch_size=24, seed=0),
    )

    def exact_items(weights):
        mixed = MixedPairSampler([own, xz, yz], weights)
        u, p, rows = mixed.sample(8, rng=np.random.default_rng([3, 1]), return_rows=True)
        mask = rows[0, 0, :, 0]
        np.testing.assert_array_equal(u[:, :, mask], p[:, :, mask])  # one phase for all items
        assert mask.sum() == 6
        return sum(np.allclose(a, b, atol=1e-5) for a, b in zip(u, p, strict=True))

    assert exact_items([0, 1, 1]) == 8  # all from the Z-constant reference
    assert exact_items([1, 0, 0]) == 0  # all the volume's own XY pairs
    assert 0 < exact_items([1, 1, 1]) < 8
    a = MixedPairSampler([own, xz], [1, 1]).sample(8, rng=np.random.default_rng(5))
    b = MixedPairSampler([own, xz], [1, 1]).sample(8, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ConfigError, match="weights"):
        MixedPairSampler([own, xz], [0, 0])
    with pytest.raises(ConfigError, match="patch size"):
        MixedPairSampler([own, make(volume, patch_size=16)], [1, 1])


def test_xy_pairs_repeat_their_slice_beside_pairs_with_neighbours(volume):
    """Mixed with context pairs, the volume's XY pairs (no neighbours of the restore's
    geometry) repeat U in every channel; the context pairs' channels differ."""
    reference = np.ascontiguousarray(np.broadcast_to(volume[:1], (48, 64, 72)))
    xz, _ = axial_pair_samplers(ReferencePlanes.read(reference), 4, patch_size=24, context=1)
    own = make(volume)
    u, p = MixedPairSampler([own, xz], [1, 1]).sample(16, rng=np.random.default_rng(2))
    assert u.shape == (16, 3, 24, 24) and p.shape == (16, 1, 24, 24)
    repeated = [np.array_equal(item[0], item[1]) and np.array_equal(item[0], item[2]) for item in u]
    assert 0 < sum(repeated) < 16
    with pytest.raises(InputError, match="neighbouring slices"):
        PairSampler(volume[:2], 4, patch_size=24, context=1)
