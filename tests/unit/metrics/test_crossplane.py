"""Cross-plane artifact measures on analytic cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from skelem.errors import InputError
from skelem.metrics import pass_disagreement, stripe_excess, stripe_index

SHAPE = (17, 64, 64)


@pytest.fixture
def reference():
    return np.random.default_rng(0).normal(size=SHAPE)


def test_identical_passes_agree(reference):
    assert pass_disagreement(reference, reference.copy(), 4) == 0.0


def test_disagreement_ignores_measured_rows_and_is_rms(reference):
    other = reference.copy()
    other[::4] += 100.0  # measured rows: ignored
    rows = np.arange(SHAPE[0]) % 4 != 0
    other[rows] += 2.0
    assert pass_disagreement(reference, other, 4) == pytest.approx(2.0)


def test_white_error_has_no_stripes(reference):
    noise = np.random.default_rng(1).normal(size=SHAPE)
    assert stripe_index(reference + noise, reference, 4) == pytest.approx(1.0, abs=0.15)


def test_slice_by_slice_error_shows_stripes(reference):
    """An error constant along x that changes from one y to the next (independent XZ slices)."""
    rng = np.random.default_rng(2)
    stripes = np.broadcast_to(rng.normal(size=(SHAPE[0], SHAPE[1], 1)), SHAPE)
    noise = rng.normal(size=SHAPE)
    assert stripe_index(reference + noise + stripes, reference, 4) > 10.0
    weak = stripe_index(reference + noise + 0.2 * stripes, reference, 4)
    assert weak > stripe_index(reference + noise, reference, 4)


def test_exact_prediction_has_undefined_stripe_index(reference):
    assert np.isnan(stripe_index(reference, reference, 4))


def test_shape_mismatch_and_tiny_slices_are_refused(reference):
    with pytest.raises(InputError):
        pass_disagreement(reference, reference[:, :10], 4)
    with pytest.raises(InputError):
        stripe_index(reference[:, :3, :3], reference[:, :3, :3], 4)


def _smooth_error(seed: int) -> np.ndarray:
    """An error with no preferred direction whose energy falls with frequency (as cubic's)."""
    noise = np.random.default_rng(seed).normal(size=SHAPE)
    return ndimage.gaussian_filter(noise, sigma=(0, 3, 3), mode="wrap") * 10.0


def test_white_error_has_no_stripe_excess(reference):
    noise = np.random.default_rng(1).normal(size=SHAPE)
    assert stripe_excess(reference + noise, reference, 4) == pytest.approx(1.0, abs=0.15)


def test_smooth_error_inflates_the_stripe_index_but_not_the_excess(reference):
    """The index reads a steep spectrum as stripes; the excess compares like frequencies."""
    pred = reference + _smooth_error(3)
    assert stripe_index(pred, reference, 4) > 3.0
    assert stripe_excess(pred, reference, 4) == pytest.approx(1.0, abs=0.35)


def test_slice_by_slice_stripes_show_in_the_excess(reference):
    rng = np.random.default_rng(2)
    stripes = np.broadcast_to(rng.normal(size=(SHAPE[0], SHAPE[1], 1)), SHAPE)
    smooth = _smooth_error(4)
    plain = stripe_excess(reference + smooth, reference, 4)
    assert stripe_excess(reference + smooth + stripes, reference, 4) > 5.0 * plain
    # stripes along the other axis (a YZ pass) count the same
    across = np.broadcast_to(rng.normal(size=(SHAPE[0], 1, SHAPE[2])), SHAPE)
    assert stripe_excess(reference + smooth + across, reference, 4) > 5.0 * plain


def test_stripe_excess_is_undefined_when_exact_and_refuses_tiny_slices(reference):
    assert np.isnan(stripe_excess(reference, reference, 4))
    with pytest.raises(InputError):
        stripe_excess(reference[:, :12, :12], reference[:, :12, :12], 4)
