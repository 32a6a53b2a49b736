"""Variation of information, adapted Rand error and the membrane watershed on known cases."""

from __future__ import annotations

import numpy as np
import pytest

from skelem.errors import InputError
from skelem.metrics import adapted_rand_error, membrane_watershed, variation_of_information

from .volumes import two_touching_spheres


@pytest.fixture
def halves() -> tuple[np.ndarray, np.ndarray]:
    """One object (all ones) and the same box cut into two equal halves along X."""
    whole = np.ones((8, 8, 8), dtype=np.int64)
    split = np.where(np.arange(8)[None, None, :] < 4, 5, 9) * whole
    return whole, split


def test_identical_partitions_score_zero_whatever_the_label_values(rng):
    labels = rng.integers(1, 6, size=(16, 16, 16))
    assert variation_of_information(labels, labels) == (0.0, 0.0)
    assert adapted_rand_error(labels, labels) == 0.0
    relabelled = labels * 10 - 3  # same partition, other (even negative) values
    assert variation_of_information(relabelled, labels) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert adapted_rand_error(relabelled, labels) == pytest.approx(0.0, abs=1e-12)


def test_a_split_in_two_equal_halves_costs_one_bit(halves):
    whole, split = halves
    split_vi, merge_vi = variation_of_information(split, whole)
    assert split_vi == pytest.approx(1.0, abs=1e-12)
    assert merge_vi == pytest.approx(0.0, abs=1e-12)
    assert adapted_rand_error(split, whole) == pytest.approx(1.0 / 3.0)


def test_a_merge_of_two_equal_halves_costs_one_bit(halves):
    whole, split = halves
    split_vi, merge_vi = variation_of_information(whole, split)
    assert split_vi == pytest.approx(0.0, abs=1e-12)
    assert merge_vi == pytest.approx(1.0, abs=1e-12)
    assert adapted_rand_error(whole, split) == pytest.approx(1.0 / 3.0)


def test_ground_truth_zero_is_ignored_by_default(halves):
    whole, _ = halves
    gt = whole.copy()
    gt[:, :, :2] = 0  # a quarter of the box is "unknown"
    seg = whole  # one segment over everything
    assert variation_of_information(seg, gt) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert adapted_rand_error(seg, gt) == pytest.approx(0.0, abs=1e-12)
    split_vi, merge_vi = variation_of_information(seg, gt, ignore_gt_zero=False)
    entropy = -(0.25 * np.log2(0.25) + 0.75 * np.log2(0.75))
    assert split_vi == pytest.approx(0.0, abs=1e-12)
    assert merge_vi == pytest.approx(entropy)
    assert adapted_rand_error(seg, gt, ignore_gt_zero=False) > 0.0


def test_label_inputs_are_checked(halves):
    whole, split = halves
    with pytest.raises(InputError, match="differ in shape"):
        variation_of_information(whole, split[1:])
    with pytest.raises(InputError, match="integer labels"):
        adapted_rand_error(whole.astype(float), split)
    with pytest.raises(InputError, match="all zero"):
        adapted_rand_error(whole, np.zeros_like(whole))


@pytest.mark.parametrize("seed_method", ["maxima", "components"])
def test_watershed_separates_two_touching_blobs_at_the_membrane(seed_method):
    membrane_prob, gt = two_touching_spheres()
    labels = membrane_watershed(membrane_prob, seed_method=seed_method, min_seed_distance=2.0)
    assert labels.shape == gt.shape and labels.min() >= 1
    core = membrane_prob < 0.5
    left = np.unique(labels[core & (gt == 1)])
    right = np.unique(labels[core & (gt == 2)])
    assert left.size == 1 and right.size == 1 and left[0] != right[0]
    assert variation_of_information(labels, gt) == pytest.approx((0.0, 0.0), abs=1e-9)
    assert adapted_rand_error(labels, gt) == pytest.approx(0.0, abs=1e-9)


def test_watershed_without_the_membrane_plane_merges_the_blobs():
    membrane_prob, gt = two_touching_spheres()
    no_plane = membrane_prob.copy()
    middle = gt.shape[2] // 2
    inside = gt > 0
    no_plane[:, :, middle - 2 : middle + 2][inside[:, :, middle - 2 : middle + 2]] = 0.0
    labels = membrane_watershed(no_plane, seed_method="components", min_seed_distance=4.0)
    assert variation_of_information(labels, gt)[1] > 0.5  # merge error


def test_min_size_absorbs_small_segments():
    membrane_prob, _ = two_touching_spheres()
    pocket = membrane_prob.copy()
    pocket[2:5, 2:5, 2:5] = 0.0  # a small hole in the background gets its own seed
    labels = membrane_watershed(pocket)
    sizes = np.sort(np.bincount(labels.ravel())[1:])
    assert sizes.size == 3
    cleaned = membrane_watershed(pocket, min_size=int(sizes[0]) + 1)
    assert cleaned.max() == 2
    assert np.bincount(cleaned.ravel())[1:].min() > sizes[0]
