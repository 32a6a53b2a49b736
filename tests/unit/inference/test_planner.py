"""The block planner: pure geometry, tested by reassembling volumes with known local "models"."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from skelem.errors import SkelEMError
from skelem.inference.planner import (
    Block,
    BlockPlanError,
    block_output_origin,
    block_output_shape,
    output_shape,
    plan_blocks,
)
from skelem.inference.runner import run_in_memory

from .toy_models import (
    affine_model,
    array_reader,
    box_filter_model,
    identity_model,
    pooling_model,
    untiled,
    upsample_cubic,
)

FACTORS = (1, 2, 3, 4, 8)
INPUT_SHAPES = ((1, 1, 1), (1, 5, 7), (2, 9, 4), (3, 16, 16), (5, 13, 11), (7, 23, 19), (9, 32, 8))
BLOCK_SHAPES = ((4, 4, 4), (5, 7, 3), (8, 16, 16), (64, 64, 64))
HALOS = ((0, 0, 0), (1, 2, 3), (5, 4, 4))
CHUNKS = (None, (2, 4, 4), (3, 5, 2))
ALIGNS = (1, 4, 8)


def check_geometry(plan, input_shape, factor, block_shape, halo, align, chunks, interp_halo=2):
    """Every invariant of a plan, as assertions (used for many geometry combinations)."""
    out = output_shape(input_shape, factor)
    coverage = np.zeros(out, dtype=np.int32)
    rounded = (
        block_shape
        if chunks is None
        else tuple(math.ceil(b / c) * c for b, c in zip(block_shape, chunks, strict=True))
    )
    grid = [math.ceil(n / b) for n, b in zip(out, rounded, strict=True)]
    assert [b.index for b in plan] == list(itertools.product(*(range(g) for g in grid)))
    for block in plan:
        coverage[block.write] += 1
        # write regions: block-sized, chunk-aligned
        for axis, (w, n) in enumerate(zip(block.write, out, strict=True)):
            assert w.start == block.index[axis] * rounded[axis]
            assert w.stop == min(w.start + rounded[axis], n)
            if chunks is not None:
                assert w.start % chunks[axis] == 0
                assert w.stop % chunks[axis] == 0 or w.stop == n
        # lateral reads: inside the volume, contain the halo, start aligned
        for axis in (1, 2):
            r, w, h, n = block.read[axis], block.write[axis], halo[axis], out[axis]
            assert 0 <= r.start and r.stop <= n
            assert r.start % align == 0
            assert r.start <= max(0, w.start - h)
            assert r.stop >= min(n, w.stop + h)
        # z read (input slices): halo converted to input slices plus interpolation context
        r, w, h = block.read[0], block.write[0], halo[0]
        assert 0 <= r.start < r.stop <= input_shape[0]
        assert (r.start * factor) % align == 0
        assert r.start <= max(0, (w.start - h) // factor - interp_halo)
        assert r.stop - 1 >= min(
            input_shape[0] - 1, math.ceil((w.stop - 1 + h) / factor) + interp_halo
        )
        # crop: the write region inside the block output
        origin = block_output_origin(block, factor)
        shape = block_output_shape(block, factor)
        for c, w, o, n in zip(block.crop, block.write, origin, shape, strict=True):
            assert c.start == w.start - o and c.stop == w.stop - o
            assert 0 <= c.start < c.stop <= n
    assert coverage.min() == 1 and coverage.max() == 1, (
        "write regions must tile the output exactly once"
    )


def test_output_shape_follows_the_measured_row_convention():
    assert output_shape((5, 10, 12), 4) == (17, 10, 12)
    assert output_shape((1, 3, 3), 8) == (1, 3, 3)
    assert output_shape((6, 2, 2), 1) == (6, 2, 2)


@pytest.mark.parametrize("factor", FACTORS)
def test_plan_geometry_for_many_combinations(factor):
    for input_shape, block_shape, halo, chunks, align in itertools.product(
        INPUT_SHAPES, BLOCK_SHAPES, HALOS, CHUNKS, ALIGNS
    ):
        plan = plan_blocks(input_shape, factor, block_shape, halo, align=align, chunks=chunks)
        check_geometry(plan, input_shape, factor, block_shape, halo, align, chunks)


def random_cases(n_cases, seed):
    """Random geometry combinations (fixed seed) for the model-based reassembly tests."""
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        factor = int(rng.choice(FACTORS))
        input_shape = tuple(
            int(v) for v in (rng.integers(1, 8), rng.integers(1, 30), rng.integers(1, 30))
        )
        block_shape = tuple(int(v) for v in rng.integers(1, 20, size=3))
        halo = tuple(int(v) for v in rng.integers(0, 6, size=3))
        chunks = None if rng.random() < 0.3 else tuple(int(v) for v in rng.integers(1, 8, size=3))
        align = int(rng.choice(ALIGNS))
        yield factor, input_shape, block_shape, halo, chunks, align


def run_tiled(model, volume, factor, plan):
    return run_in_memory(
        array_reader(volume), model, plan, output_shape(volume.shape, factor), dtype=np.float64
    )


@pytest.mark.parametrize("seed", range(4))
def test_identity_and_affine_models_reassemble_exactly(seed):
    rng = np.random.default_rng(seed)
    for factor, input_shape, block_shape, halo, chunks, align in random_cases(40, seed):
        volume = rng.random(input_shape)
        plan = plan_blocks(input_shape, factor, block_shape, halo, align=align, chunks=chunks)
        restored = run_tiled(identity_model(factor), volume, factor, plan)
        np.testing.assert_array_equal(restored[::factor], volume)  # measured rows are the input
        np.testing.assert_array_equal(restored, untiled(identity_model(factor), volume, factor))
        affine = run_tiled(affine_model(factor), volume, factor, plan)
        np.testing.assert_array_equal(affine[::factor], 2 * volume + 1)
        np.testing.assert_array_equal(affine, untiled(affine_model(factor), volume, factor))


def test_every_factor_reassembles_a_multi_block_volume():
    rng = np.random.default_rng(1)
    volume = rng.random((6, 21, 17))
    for factor in FACTORS:
        plan = plan_blocks(volume.shape, factor, (5, 8, 6), (2, 3, 1), align=4, chunks=(5, 4, 3))
        assert len(plan) > 8
        restored = run_tiled(identity_model(factor), volume, factor, plan)
        np.testing.assert_array_equal(restored[::factor], volume)


def test_single_block_and_volume_smaller_than_a_block():
    volume = np.arange(2 * 3 * 5, dtype=np.float64).reshape(2, 3, 5)
    plan = plan_blocks(volume.shape, 4, (64, 64, 64), (8, 8, 8), align=8, chunks=(16, 16, 16))
    assert len(plan) == 1
    (block,) = plan
    assert block.read == (slice(0, 2), slice(0, 3), slice(0, 5))
    assert block.write == block.crop == (slice(0, 5), slice(0, 3), slice(0, 5))
    np.testing.assert_array_equal(run_tiled(identity_model(4), volume, 4, plan)[::4], volume)


@pytest.mark.parametrize("seed", range(3))
def test_finite_receptive_field_model_is_tile_invariant_when_halo_covers_it(seed):
    rng = np.random.default_rng(10 + seed)
    for factor, input_shape, block_shape, _, chunks, align in random_cases(25, 100 + seed):
        radius = tuple(int(v) for v in rng.integers(0, 4, size=3))
        halo = tuple(
            r + int(extra) for r, extra in zip(radius, rng.integers(0, 3, size=3), strict=True)
        )
        volume = rng.random(input_shape)
        model = box_filter_model(factor, input_shape, radius)
        plan = plan_blocks(input_shape, factor, block_shape, halo, align=align, chunks=chunks)
        np.testing.assert_array_equal(
            run_tiled(model, volume, factor, plan), untiled(model, volume, factor)
        )


def test_finite_receptive_field_model_shows_seams_when_halo_is_too_small():
    """Negative control: the box model really depends on its context."""
    rng = np.random.default_rng(3)
    volume = rng.random((5, 24, 24))
    model = box_filter_model(2, volume.shape, (0, 0, 3))
    plan = plan_blocks(volume.shape, 2, (9, 8, 8), (0, 0, 2))
    assert not np.array_equal(run_tiled(model, volume, 2, plan), untiled(model, volume, 2))


@pytest.mark.parametrize("factor", (1, 2, 3, 4, 8))
def test_aligned_reads_keep_pooling_grids_of_the_untiled_run(factor):
    rng = np.random.default_rng(factor)
    cell = 4
    volume = rng.random((9, 27, 22))
    model = pooling_model(factor, cell)
    for block_shape in ((6, 10, 6), (16, 8, 16), (5, 5, 7)):
        plan = plan_blocks(volume.shape, factor, block_shape, (cell, cell, cell), align=cell)
        np.testing.assert_array_equal(
            run_tiled(model, volume, factor, plan), untiled(model, volume, factor)
        )


def test_unaligned_reads_break_pooling_grids():
    """Negative control: without alignment the pooling model differs from the untiled run."""
    rng = np.random.default_rng(5)
    volume = rng.random((3, 30, 30))
    model = pooling_model(1, 4)
    plan = plan_blocks(volume.shape, 1, (3, 10, 10), (0, 3, 3), align=1)
    assert not np.array_equal(run_tiled(model, volume, 1, plan), untiled(model, volume, 1))


@pytest.mark.parametrize("factor", (2, 3, 4, 8))
def test_cubic_interpolation_needs_the_interpolation_halo(factor):
    rng = np.random.default_rng(factor)
    volume = rng.random((11, 6, 5))
    model = identity_model(factor, upsample=upsample_cubic)
    expected = untiled(model, volume, factor)
    plan = plan_blocks(volume.shape, factor, (factor + 1, 6, 5), (0, 0, 0))
    np.testing.assert_array_equal(run_tiled(model, volume, factor, plan), expected)
    too_short = plan_blocks(
        volume.shape, factor, (factor + 1, 6, 5), (0, 0, 0), interp_halo_slices=0
    )
    assert not np.array_equal(run_tiled(model, volume, factor, too_short), expected)


def test_block_shape_is_rounded_up_to_a_multiple_of_the_chunks():
    plan = plan_blocks((10, 40, 40), 2, (10, 10, 10), (0, 0, 0), chunks=(4, 8, 16))
    assert plan[0].write == (slice(0, 12), slice(0, 16), slice(0, 16))
    assert {b.write[0].start for b in plan} == {0, 12}


def test_z_read_start_lands_on_an_aligned_output_row():
    # factor 3, align 8: input slice k starts a read only if 3k is a multiple of 8,
    # i.e. k in {0, 8, ...}
    plan = plan_blocks((30, 4, 4), 3, (16, 4, 4), (2, 0, 0), align=8)
    starts = {b.read[0].start for b in plan}
    assert all(k % 8 == 0 for k in starts) and len(starts) > 1


def test_read_region_of_an_interior_block():
    (block,) = [
        b
        for b in plan_blocks((20, 64, 64), 4, (16, 16, 16), (3, 5, 5), align=8)
        if b.index == (1, 1, 1)
    ]
    # write z rows 16..31 with halo 3 -> rows 13..34 -> slices 3..9, plus 2 -> 1..11, aligned to 2
    assert block.write == (slice(16, 32), slice(16, 32), slice(16, 32))
    assert block.read == (slice(0, 12), slice(8, 37), slice(8, 37))
    assert block.crop == (slice(16, 32), slice(8, 24), slice(8, 24))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_shape": (0, 4, 4)},
        {"input_shape": (4, 4)},
        {"factor": 0},
        {"factor": 2.5},
        {"block_shape": (4, 0, 4)},
        {"halo": (0, -1, 0)},
        {"align": 0},
        {"chunks": (1, 1, 0)},
        {"interp_halo_slices": -1},
    ],
)
def test_invalid_geometry_is_refused_with_one_sentence(kwargs):
    arguments = {"input_shape": (4, 4, 4), "factor": 2, "block_shape": (4, 4, 4), "halo": (1, 1, 1)}
    arguments.update(kwargs)
    with pytest.raises(BlockPlanError) as info:
        plan_blocks(**arguments)
    assert isinstance(info.value, ValueError) and isinstance(info.value, SkelEMError)
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message


def test_blocks_are_immutable_and_numpy_integers_are_accepted():
    plan = plan_blocks(np.array([3, 8, 8]), np.int64(2), (np.int32(5), 8, 8), (1, 1, 1))
    assert isinstance(plan[0], Block)
    with pytest.raises(AttributeError):
        plan[0].index = (9, 9, 9)  # type: ignore[misc]


@pytest.mark.parametrize("block", [(64, 128, 128), (128, 512, 512), (16, 64, 96), (48, 384, 640)])
def test_output_chunks_keep_the_requested_block(block):
    """OME-Zarr chunks must tile the user's block, so the planner does not enlarge it (memory)."""
    from skelem.inference.writers import output_chunks

    chunks = output_chunks(block)
    assert all(b % c == 0 for b, c in zip(block, chunks, strict=True))
    assert all(c <= t for c, t in zip(chunks, (32, 256, 256), strict=True))
    plan = plan_blocks((40, 700, 900), 4, block, (2, 8, 8), chunks=chunks)
    writes = {tuple(s.stop - s.start for s in b.write) for b in plan}
    assert tuple(block) in writes
    assert all(w[i] <= block[i] for w in writes for i in range(3))


def _computed(plan, factor):
    """Output voxels computed over a plan's read regions (halos included), and the largest."""
    sizes = [int(np.prod(block_output_shape(b, factor))) for b in plan]
    return sum(sizes), max(sizes)


@pytest.mark.parametrize(
    "shape, halo",
    [
        ((250, 2000, 2000), (108, 104, 104)),
        ((100, 3000, 3000), (56, 56, 56)),
        ((40, 900, 700), (2, 0, 0)),
    ],
)
def test_chosen_block_computes_less_within_the_fixed_blocks_memory(shape, halo):
    """Tall blocks with few cuts: less halo recomputed than the fixed 128 x 512 x 512 block, and
    no block reads more than that block's interior read region (its memory)."""
    from skelem.inference.planner import choose_block_shape, largest_read_voxels
    from skelem.inference.writers import output_chunks

    fixed = (128, 512, 512)
    budget = largest_read_voxels(fixed, 4, halo, 8)
    block = choose_block_shape(
        shape, 4, halo, 8, max_read_voxels=budget, workers=2, chunk_of=output_chunks
    )
    plan = plan_blocks(shape, 4, block, halo, align=8, chunks=output_chunks(block))
    old = plan_blocks(shape, 4, fixed, halo, align=8, chunks=output_chunks(fixed))
    (total, largest), (old_total, _) = _computed(plan, 4), _computed(old, 4)
    assert largest <= budget
    assert total <= old_total
    out = output_shape(shape, 4)
    covered = np.zeros(out, np.uint8)
    for b in plan:
        covered[b.write] += 1
    assert (covered == 1).all()


def test_small_volume_is_split_evenly_for_two_workers_and_whole_for_one():
    """The t2 benchmark volume (63 x 250 x 250, x4): one block for one worker (no halo at all);
    for two, two blocks of equal size rather than one of 224 output slices and one of 25."""
    from skelem.inference.planner import choose_block_shape, largest_read_voxels

    halo = (56, 56, 56)
    budget = largest_read_voxels((128, 512, 512), 4, halo, 8)
    one = choose_block_shape((63, 250, 250), 4, halo, 8, max_read_voxels=budget, workers=1)
    assert one == (249, 250, 250)
    two = choose_block_shape((63, 250, 250), 4, halo, 8, max_read_voxels=budget, workers=2)
    plan = plan_blocks((63, 250, 250), 4, two, halo, align=8)
    assert len(plan) == 2
    sizes = [int(np.prod(block_output_shape(b, 4))) for b in plan]
    assert max(sizes) <= 1.1 * min(sizes)
    # when a second thread is worth 0.65 of a second worker (measured), one whole block on one
    # worker of 2 threads (1 / 1.65) beats two blocks that recompute their halos (1.45 / 2)
    threaded = choose_block_shape(
        (63, 250, 250), 4, halo, 8, max_read_voxels=budget, workers=2, thread_gain=0.65
    )
    assert threaded == (249, 250, 250)


def test_block_choice_rejects_bad_geometry():
    from skelem.inference.planner import choose_block_shape

    with pytest.raises(BlockPlanError, match="worker count"):
        choose_block_shape((10, 64, 64), 4, (2, 2, 2), max_read_voxels=10**6, workers=0)
    with pytest.raises(BlockPlanError, match="factor"):
        choose_block_shape((10, 64, 64), 0, (2, 2, 2), max_read_voxels=10**6)
