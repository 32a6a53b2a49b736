"""Property-based tests of the block planner (hypothesis): pure geometry, checked voxel by voxel.

For random volume shapes, factors, block shapes, halos, alignments and output chunks:

- every output voxel is written by exactly one block, and write regions start on chunk bounds;
- every read region lies within the input volume, starts on the network alignment, and holds the
  write region grown by the halo (clamped to the volume);
- crops map back: the block output's global coordinates at ``crop`` are those of ``write``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skelem.grid import restored_shape
from skelem.inference.planner import (
    Block,
    block_output_origin,
    block_output_shape,
    output_shape,
    plan_blocks,
)

# The reliability conftest's autouse fixture (torch on one thread) holds no per-example state.
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

triple = st.tuples


@st.composite
def geometries(draw: st.DrawFn) -> dict:
    """Arguments of :func:`plan_blocks`: small volumes, so a voxel count array stays cheap."""
    factor = draw(st.integers(min_value=1, max_value=16))
    shape = draw(
        triple(
            st.integers(min_value=1, max_value=10),
            st.integers(min_value=1, max_value=40),
            st.integers(min_value=1, max_value=40),
        )
    )
    out = restored_shape(shape, factor)
    block = draw(triple(*(st.integers(min_value=1, max_value=n + 5) for n in out)))
    halo = draw(triple(*(st.integers(min_value=0, max_value=n) for n in out)))
    align = draw(st.sampled_from([1, 2, 4, 8, 16]))
    chunks = draw(st.none() | triple(*(st.integers(min_value=1, max_value=n) for n in out)))
    return {
        "input_shape": shape,
        "factor": factor,
        "block_shape": block,
        "halo": halo,
        "align": align,
        "chunks": chunks,
        "interp_halo_slices": draw(st.integers(min_value=0, max_value=3)),
    }


def _span(region: slice) -> range:
    return range(region.start, region.stop)


@PROPERTY
@given(geometry=geometries())
def test_every_output_voxel_is_written_by_exactly_one_block(geometry: dict) -> None:
    plan = plan_blocks(**geometry)
    out = output_shape(geometry["input_shape"], geometry["factor"])
    written = np.zeros(out, np.int32)
    for block in plan:
        for axis, region in enumerate(block.write):
            assert 0 <= region.start < region.stop <= out[axis], (block, out)
        written[block.write] += 1
    assert written.min() == 1 and written.max() == 1
    assert [block.index for block in plan] == sorted(block.index for block in plan)  # C order
    if geometry["chunks"] is not None:
        for block in plan:
            for region, chunk in zip(block.write, geometry["chunks"], strict=True):
                assert region.start % chunk == 0, (block, geometry["chunks"])


@PROPERTY
@given(geometry=geometries())
def test_read_regions_lie_within_the_volume_and_hold_the_halo(geometry: dict) -> None:
    shape, factor = geometry["input_shape"], geometry["factor"]
    out = output_shape(shape, factor)
    halo, align = geometry["halo"], geometry["align"]
    for block in plan_blocks(**geometry):
        for axis, region in enumerate(block.read):
            assert 0 <= region.start < region.stop <= shape[axis], (block, shape)
        # Along z the read covers output rows s*start .. s*(stop-1); the halo rows must be there.
        z_read, z_write = block.read[0], block.write[0]
        needed = (max(z_write.start - halo[0], 0), min(z_write.stop - 1 + halo[0], out[0] - 1))
        assert factor * z_read.start <= needed[0] and needed[1] <= factor * (z_read.stop - 1)
        assert (factor * z_read.start) % align == 0 or z_read.start == 0
        for axis in (1, 2):
            read, write = block.read[axis], block.write[axis]
            assert read.start <= max(write.start - halo[axis], 0)
            assert read.stop >= min(write.stop + halo[axis], out[axis])
            assert read.start % align == 0


def _check_crop(block: Block, factor: int) -> None:
    """The block output's global coordinates, cut at ``crop``, are the ``write`` coordinates."""
    origin = block_output_origin(block, factor)
    shape = block_output_shape(block, factor)
    for axis in range(3):
        crop, write = block.crop[axis], block.write[axis]
        assert 0 <= crop.start < crop.stop <= shape[axis], (block, shape)
        global_coords = origin[axis] + np.arange(shape[axis])
        assert np.array_equal(global_coords[crop], np.arange(write.start, write.stop))


@PROPERTY
@given(geometry=geometries())
def test_crops_map_back_onto_the_write_regions(geometry: dict) -> None:
    for block in plan_blocks(**geometry):
        _check_crop(block, geometry["factor"])


@PROPERTY
@given(geometry=geometries(), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_a_coordinate_model_reassembles_the_untiled_output(geometry: dict, seed: int) -> None:
    """A "model" whose output voxel is a function of its global coordinate (``2z+1``-like, with
    input values on measured rows) pasted block by block equals the untiled result exactly."""
    shape, factor = geometry["input_shape"], geometry["factor"]
    volume = np.random.default_rng(seed).random(shape).astype(np.float32)

    def model(block_in: np.ndarray, origin: tuple[int, int, int]) -> np.ndarray:
        out = np.empty(restored_shape(block_in.shape, factor), np.float32)
        z = origin[0] + np.arange(out.shape[0])
        y = origin[1] + np.arange(out.shape[1])
        x = origin[2] + np.arange(out.shape[2])
        out[...] = (2 * z[:, None, None] + 1) + 1000 * y[None, :, None] + 1e-3 * x[None, None, :]
        rows = np.flatnonzero((origin[0] + np.arange(out.shape[0])) % factor == 0)
        out[rows] = block_in  # measured rows hold the input slices they sit on
        return out

    whole = model(volume, (0, 0, 0))
    tiled = np.full(whole.shape, np.nan, np.float32)
    for block in plan_blocks(**geometry):
        result = model(volume[block.read], block_output_origin(block, factor))
        tiled[block.write] = result[block.crop]
    assert np.array_equal(tiled, whole)
