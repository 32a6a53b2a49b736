"""Linear-ramp weights and the in-memory blending accumulator."""

from __future__ import annotations

import numpy as np
import pytest

from skelem.inference.blend import BlendAccumulator, taper_weights
from skelem.inference.planner import output_shape, plan_blocks
from skelem.inference.runner import run_in_memory

from .toy_models import array_reader, block_offset_model, identity_model, untiled


def test_taper_weights_are_separable_linear_ramps():
    weights = taper_weights((1, 1, 8), (0, 0, 4))
    np.testing.assert_allclose(
        weights[0, 0], [0.125, 0.375, 0.625, 0.875, 0.875, 0.625, 0.375, 0.125]
    )
    assert weights.dtype == np.float32
    cube = taper_weights((6, 7, 8), ((2, 0), (0, 3), 1), dtype=np.float64)
    expected = (
        taper_weights((6, 1, 1), ((2, 0), 0, 0), np.float64)
        * taper_weights((1, 7, 1), (0, (0, 3), 0), np.float64)
        * taper_weights((1, 1, 8), (0, 0, 1), np.float64)
    )
    np.testing.assert_array_equal(cube, expected)
    assert cube.min() > 0 and cube.max() == 1


def test_no_overlap_gives_ones():
    np.testing.assert_array_equal(taper_weights((3, 4, 5), 0), np.ones((3, 4, 5)))


def test_neighbouring_ramps_sum_to_one_in_their_shared_zone():
    width = 6
    left = taper_weights((1, 1, 10), (0, 0, (0, width)), np.float64)[0, 0]
    right = taper_weights((1, 1, 10), (0, 0, (width, 0)), np.float64)[0, 0]
    np.testing.assert_allclose(left[-width:] + right[:width], 1.0)


def test_ramps_longer_than_the_region_stay_positive():
    weights = taper_weights((3,), 10)
    assert np.all(weights > 0) and np.all(weights <= 1)


def test_bad_overlap_is_refused():
    with pytest.raises(ValueError):
        taper_weights((3, 3), (1, 1, 1))
    with pytest.raises(ValueError):
        taper_weights((3, 3), (1, -1))


def test_accumulator_averages_with_weights():
    acc = BlendAccumulator((1, 1, 4))
    acc.add(
        np.full((1, 1, 3), 2.0), (slice(0, 1), slice(0, 1), slice(0, 3)), np.full((1, 1, 3), 1.0)
    )
    acc.add(
        np.full((1, 1, 3), 5.0), (slice(0, 1), slice(0, 1), slice(1, 4)), np.full((1, 1, 3), 2.0)
    )
    np.testing.assert_allclose(acc.result()[0, 0], [2.0, 4.0, 4.0, 5.0])


def test_accumulator_refuses_uncovered_voxels_and_wrong_shapes():
    acc = BlendAccumulator((2, 2, 2))
    acc.add(np.ones((1, 2, 2)), (slice(0, 1), slice(0, 2), slice(0, 2)))
    with pytest.raises(ValueError, match="no block contribution"):
        acc.result()
    with pytest.raises(ValueError):
        acc.add(np.ones((2, 2, 2)), (slice(0, 1), slice(0, 2), slice(0, 2)))
    with pytest.raises(ValueError):
        acc.add(np.ones((1, 2, 2)), (slice(0, 1), slice(0, 2), slice(0, 2)), np.ones((2, 2, 2)))


@pytest.mark.parametrize("factor", (1, 3))
def test_blend_mode_matches_untiled_for_a_tile_invariant_model(factor):
    rng = np.random.default_rng(0)
    volume = rng.random((6, 20, 18))
    plan = plan_blocks(volume.shape, factor, (5, 7, 6), (3, 3, 3), chunks=(5, 7, 3))
    model = identity_model(factor)
    blended = run_in_memory(
        array_reader(volume),
        model,
        plan,
        output_shape(volume.shape, factor),
        np.float64,
        blend_overlap=2,
    )
    np.testing.assert_allclose(blended, untiled(model, volume, factor), rtol=0, atol=1e-12)


def test_blend_mode_softens_seams_of_a_model_that_is_not_tile_invariant():
    factor = 2
    volume = np.ones((3, 8, 64))
    plan = plan_blocks(volume.shape, factor, (5, 8, 16), (0, 0, 6))
    offsets = {block.index: float(i % 2) for i, block in enumerate(plan)}  # 0, 1, 0, 1 along x
    model = block_offset_model(factor, offsets)
    out_shape = output_shape(volume.shape, factor)
    cropped = run_in_memory(array_reader(volume), model, plan, out_shape, np.float64)
    blended = run_in_memory(
        array_reader(volume), model, plan, out_shape, np.float64, blend_overlap=4
    )
    seam_crop = np.abs(np.diff(cropped, axis=2)).max()
    seam_blend = np.abs(np.diff(blended, axis=2)).max()
    assert seam_crop == pytest.approx(1.0)
    assert seam_blend <= seam_crop / 4
    # away from the seams the block values are kept
    np.testing.assert_allclose(blended[:, :, :4], 1.0)
    np.testing.assert_allclose(blended[:, :, 16 + 5 : 32 - 5], 2.0)


def test_negative_blend_overlap_is_refused():
    plan = plan_blocks((2, 2, 2), 1, (2, 2, 2), (0, 0, 0))
    with pytest.raises(ValueError):
        run_in_memory(
            array_reader(np.ones((2, 2, 2))), identity_model(1), plan, (2, 2, 2), blend_overlap=-1
        )
