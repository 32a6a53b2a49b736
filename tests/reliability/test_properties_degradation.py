"""Property-based tests of the axial degradation model ``D_s`` and the output grid (hypothesis).

For random shapes, integer factors 2-16 and offsets: ``profile="none"`` keeps exactly every s-th
slice from the offset, the kept count follows the grid rule ``s*(n-1)+1`` of :mod:`skelem.grid`,
and too short an axis is refused with :class:`InputError`; box and gaussian profiles map a
constant volume to the same constant (their kernels sum to 1, edges replicate).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skelem.data.degradation import degrade, kept_indices, slice_profile_kernel
from skelem.errors import InputError
from skelem.grid import measured_rows, restored_length

# The reliability conftest's autouse fixture pins torch to one thread; it holds no state an
# example could leak into the next, so sharing it across examples is safe.
PROPERTY = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

factors = st.integers(min_value=2, max_value=16)


@st.composite
def degradable(draw: st.DrawFn) -> tuple[np.ndarray, int, int, int]:
    """An integer array of 1-3 axes, an axis with enough samples for 2 kept ones, factor, offset."""
    factor = draw(factors)
    offset = draw(st.integers(min_value=0, max_value=factor - 1))
    ndim = draw(st.integers(min_value=1, max_value=3))
    axis = draw(st.integers(min_value=0, max_value=ndim - 1))
    shape = [draw(st.integers(min_value=1, max_value=5)) for _ in range(ndim)]
    shape[axis] = draw(st.integers(min_value=offset + factor + 1, max_value=offset + 6 * factor))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    array = np.random.default_rng(seed).integers(0, 60000, size=shape).astype(np.uint16)
    return array, axis, factor, offset


@PROPERTY
@given(case=degradable())
def test_profile_none_keeps_exactly_every_sth_slice_from_the_offset(
    case: tuple[np.ndarray, int, int, int],
) -> None:
    array, axis, factor, offset = case
    degraded = degrade(array, factor, axis=axis, profile="none", offset=offset)
    expected = np.take(array, np.arange(offset, array.shape[axis], factor), axis=axis)
    assert degraded.dtype == array.dtype
    assert degraded.shape == expected.shape
    assert np.array_equal(degraded, expected)
    assert not np.shares_memory(degraded, array)  # a copy: the caller's array stays its own


@PROPERTY
@given(case=degradable())
def test_the_kept_count_follows_the_output_grid(case: tuple[np.ndarray, int, int, int]) -> None:
    """``n`` kept slices span ``s*(n-1)+1`` rows from the offset; the rest is under one step."""
    array, axis, factor, offset = case
    length = array.shape[axis]
    kept = degrade(array, factor, axis=axis, offset=offset).shape[axis]
    span = restored_length(kept, factor)
    assert span + offset <= length < span + offset + factor
    # Restoring the kept slices gives `span` rows whose measured rows are the kept ones.
    rows = np.flatnonzero(measured_rows(span, factor)) + offset
    assert np.array_equal(rows, kept_indices(length, factor, offset))


@PROPERTY
@given(
    factor=factors,
    extra=st.integers(min_value=0, max_value=40),
    data=st.data(),
)
def test_an_isotropic_volume_on_the_output_grid_degrades_back_to_its_slice_count(
    factor: int, extra: int, data: st.DataObject
) -> None:
    acquired = data.draw(st.integers(min_value=2, max_value=12), label="acquired slices")
    volume = np.zeros((restored_length(acquired, factor), 2, 3), np.float32)
    assert degrade(volume, factor).shape == (acquired, 2, 3)
    # Up to s-1 trailing rows more do not add a slice; s more do.
    padded = np.zeros((volume.shape[0] + extra % factor, 2, 3), np.float32)
    assert degrade(padded, factor).shape[0] == acquired
    longer = np.zeros((volume.shape[0] + factor, 2, 3), np.float32)
    assert degrade(longer, factor).shape[0] == acquired + 1


@PROPERTY
@given(factor=factors, data=st.data())
def test_too_short_an_axis_is_refused(factor: int, data: st.DataObject) -> None:
    offset = data.draw(st.integers(min_value=0, max_value=factor - 1), label="offset")
    length = data.draw(st.integers(min_value=1, max_value=offset + factor), label="length")
    with pytest.raises(InputError, match="too few to degrade"):
        degrade(np.zeros((length, 2, 2), np.float32), factor, offset=offset)


@st.composite
def profiles(draw: st.DrawFn) -> dict:
    """A box profile of any positive thickness (default: the factor) or a gaussian profile."""
    if draw(st.booleans()):
        thickness = draw(st.none() | st.floats(min_value=0.1, max_value=40.0))
        return {"profile": "box", "thickness": thickness}
    return {"profile": "gaussian", "sigma": draw(st.floats(min_value=0.1, max_value=6.0))}


@PROPERTY
@given(
    factor=factors,
    profile=profiles(),
    value=st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
    dtype=st.sampled_from([np.float32, np.float64]),
    data=st.data(),
)
def test_box_and_gaussian_profiles_keep_a_constant_volume_constant(
    factor: int, profile: dict, value: float, dtype: type, data: st.DataObject
) -> None:
    offset = data.draw(st.integers(min_value=0, max_value=factor - 1), label="offset")
    length = data.draw(
        st.integers(min_value=offset + factor + 1, max_value=offset + 5 * factor), label="length"
    )
    kernel = slice_profile_kernel(
        profile["profile"], factor, profile.get("thickness"), profile.get("sigma")
    )
    assert kernel is not None and kernel.size % 2 == 1
    assert np.isclose(kernel.sum(), 1.0) and np.allclose(kernel, kernel[::-1])
    volume = np.full((length, 3, 4), value, dtype=dtype)
    degraded = degrade(volume, factor, offset=offset, **profile)
    assert degraded.shape == (len(range(offset, length, factor)), 3, 4)
    assert degraded.dtype == dtype
    tolerance = (1e-5 if dtype == np.float32 else 1e-12) * max(1.0, abs(value))
    np.testing.assert_allclose(degraded, value, rtol=0, atol=tolerance)
