"""Errors on measured rows and on the rows in between."""

from __future__ import annotations

import numpy as np
import pytest

from skelem.errors import InputError, SkelEMError
from skelem.metrics import between_slice_error, measured_slice_error


@pytest.fixture
def reference(rng) -> np.ndarray:
    return rng.random((33, 12, 10))  # 4 * (9 - 1) + 1 rows


def test_measured_rows_matching_the_acquisition_give_zero(reference):
    acquired = reference[::4]
    assert measured_slice_error(reference, acquired, factor=4) == {"max_abs": 0.0, "mae": 0.0}
    shifted = reference[1::4][:8]
    assert measured_slice_error(reference, shifted, factor=4, offset=1)["max_abs"] == 0.0


def test_a_changed_measured_row_is_reported(reference):
    acquired = reference[::4].copy()
    acquired[2, 3, 4] += 0.25
    errors = measured_slice_error(reference, acquired, factor=4)
    assert errors["max_abs"] == pytest.approx(0.25)
    assert errors["mae"] == pytest.approx(0.25 / acquired.size)


def test_between_rows_ignore_the_measured_rows(reference):
    pred = reference.copy()
    pred[::4] += 1.0  # damage only measured rows
    assert between_slice_error(pred, reference, factor=4) == {"mae": 0.0, "psnr": float("inf")}
    pred = reference.copy()
    pred[1::4] += 0.1  # one in three rows in between
    errors = between_slice_error(pred, reference, factor=4, data_range=1.0)
    assert errors["mae"] == pytest.approx(0.1 / 3)
    assert errors["psnr"] == pytest.approx(10 * np.log10(1 / (0.01 / 3)))


def test_bad_geometry_is_refused(reference):
    with pytest.raises(InputError, match="cannot hold"):
        measured_slice_error(reference, reference[::3], factor=4)
    with pytest.raises(InputError, match="offset"):
        measured_slice_error(reference, reference[::4], factor=4, offset=4)
    with pytest.raises(SkelEMError, match="factor"):
        between_slice_error(reference, reference, factor=2.5)
