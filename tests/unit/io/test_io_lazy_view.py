"""AxisView: a lazy (Z, Y, X) view that fixes singleton axes and reorders spatial ones."""

from __future__ import annotations

import numpy as np
import pytest

from skelem.io.lazy import AxisView


def test_view_fixes_singletons_and_reorders_axes():
    source = np.arange(1 * 4 * 5 * 3).reshape(1, 4, 5, 3)  # (c, x, z, y)
    view = AxisView(source, spatial=(2, 3, 1), fixed={0: 0})
    expected = source[0].transpose(1, 2, 0)  # (z, y, x)
    assert view.shape == (5, 3, 4) and view.dtype == source.dtype
    np.testing.assert_array_equal(view[...], expected)
    np.testing.assert_array_equal(view[2], expected[2])
    np.testing.assert_array_equal(view[1:4, :, 2], expected[1:4, :, 2])
    np.testing.assert_array_equal(view[..., 1:3], expected[..., 1:3])
    np.testing.assert_array_equal(np.asarray(view), expected)
    with pytest.raises(IndexError):
        view[[0, 1]]
