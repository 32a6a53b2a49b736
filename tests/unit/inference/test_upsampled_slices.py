"""The slices of a cross-plane pass, interpolated batch by batch instead of as a whole block."""

from __future__ import annotations

import numpy as np
import pytest

from skelem.data.interpolation import upsample
from skelem.grid import mirrored_range
from skelem.inference.engine import UpsampledSlices


@pytest.mark.parametrize("perm", [(1, 0, 2), (2, 0, 1)])
def test_slices_interpolated_on_demand_equal_the_interpolated_block(perm) -> None:
    """A pass's batch of slices, interpolated on its own, has the bits of the same slices of the
    interpolated block: any rows, in order, mirrored or repeated."""
    block = np.random.default_rng(3).random((7, 9, 11), dtype=np.float32)
    whole = upsample(block, 4, axis=0, method="cubic").transpose(perm)
    source = UpsampledSlices(block, 4, perm)
    assert source.shape == whole.shape and len(source) == whole.shape[0]
    for rows in (slice(0, 1), slice(2, 7), mirrored_range(whole.shape[0], -2, 4)):
        np.testing.assert_array_equal(source[rows], whole[rows])
    with pytest.raises(ValueError, match="rows"):
        UpsampledSlices(block, 4, (0, 1, 2))
