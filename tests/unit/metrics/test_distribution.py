"""The KID-style score on fixed patch features: zero, ordering, determinism, invariance."""

from __future__ import annotations

import numpy as np
import pytest

from skelem.errors import InputError
from skelem.metrics import kid
from skelem.metrics.distribution import (
    N_FEATURES,
    paired_patch_features,
    polynomial_mmd2_paired,
    slice_patch_features,
)

from .volumes import blur_z, texture


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return texture(seed=0)


def test_identical_volumes_score_exactly_zero(reference):
    assert kid(reference, reference) == 0.0


def test_blur_scores_far_above_an_independent_sample_of_the_same_texture(reference):
    same_texture = kid(texture(seed=1), reference, n_patches=512)
    blurred = kid(blur_z(texture(seed=1), 1.5), reference, n_patches=512)
    assert blurred > 1.0
    assert abs(same_texture) < blurred / 5


def test_kid_is_deterministic_by_seed(reference):
    other = texture(seed=2)
    assert kid(other, reference, seed=7, n_patches=256) == kid(
        other, reference, seed=7, n_patches=256
    )
    assert kid(other, reference, seed=7, n_patches=256) != kid(
        other, reference, seed=8, n_patches=256
    )


def test_kid_ignores_a_common_affine_intensity_change(reference):
    other = texture(seed=3)
    plain = kid(other, reference, n_patches=256)
    assert kid(3 * other + 10, 3 * reference + 10, n_patches=256) == pytest.approx(plain, rel=1e-6)


def test_features_have_a_fixed_layout(reference):
    rows = np.array([0, 10, 24])
    cols = np.array([0, 5, 24])
    features = slice_patch_features(reference[:, 7], rows, cols)
    assert features.shape == (3, N_FEATURES) == (3, 27)
    assert np.all(np.isfinite(features))
    np.testing.assert_allclose(
        features[:, 0],
        [reference[r : r + 16, 7, c : c + 16].mean() for r, c in zip(rows, cols, strict=True)],
    )
    np.testing.assert_allclose(features[:, 2:11].sum(axis=1), 1.0)  # gradient histogram
    pred_features, ref_features = paired_patch_features(reference, reference, n_patches=100)
    assert pred_features.shape == ref_features.shape == (100, 27)


def test_mmd_estimator_is_unbiased_around_zero_for_one_distribution():
    rng = np.random.default_rng(0)
    estimates = [polynomial_mmd2_paired(*rng.standard_normal((2, 200, 5))) for _ in range(20)]
    shifted = polynomial_mmd2_paired(
        rng.standard_normal((200, 5)) + 1.0, rng.standard_normal((200, 5))
    )
    assert abs(np.mean(estimates)) < 3 * np.std(estimates) / np.sqrt(20) + 1e-3
    assert shifted > 10 * np.std(estimates)


def test_slices_smaller_than_a_patch_are_refused():
    small = np.zeros((12, 40, 40))
    with pytest.raises(InputError, match="smaller than a 16 x 16 patch"):
        kid(small, small)
