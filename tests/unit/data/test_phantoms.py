"""Procedural EM and LM phantoms: deterministic, plausible, fast."""

from __future__ import annotations

import time

import numpy as np
import pytest

from skelem.data.phantoms import em_phantom, lm_phantom
from skelem.errors import InputError

SMALL = (16, 40, 48)


@pytest.mark.parametrize("make", [em_phantom, lm_phantom])
def test_reproducible_from_seed(make):
    image_a, labels_a = make(SMALL, seed=3)
    image_b, labels_b = make(SMALL, seed=3)
    np.testing.assert_array_equal(image_a, image_b)
    np.testing.assert_array_equal(labels_a, labels_b)
    image_c, _ = make(SMALL, seed=4)
    assert not np.array_equal(image_a, image_c)


@pytest.mark.parametrize("make", [em_phantom, lm_phantom])
def test_shape_dtype_and_range(make):
    image, labels = make(SMALL, seed=0)
    assert image.shape == labels.shape == SMALL
    assert image.dtype == np.float32 and labels.dtype == np.uint32
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert image.std() > 0.05


def test_em_cells_and_dark_membranes():
    image, labels = em_phantom(SMALL, seed=1)
    ids = np.unique(labels)
    assert ids[0] == 0
    np.testing.assert_array_equal(ids[1:], np.arange(1, ids.size))  # consecutive instances
    assert ids.size > 5
    assert 0.05 < (labels == 0).mean() < 0.4
    assert image[labels == 0].mean() < image[labels > 0].mean() - 0.15


def test_lm_nuclei_brighter_than_background():
    image, labels = lm_phantom(SMALL, seed=1, n_nuclei=4)
    assert 1 <= labels.max() <= 4
    assert image[labels > 0].mean() > 3 * image[labels == 0].mean()


def test_bad_shape():
    with pytest.raises(InputError):
        em_phantom((16, 16))


@pytest.mark.parametrize("make", [em_phantom, lm_phantom])
def test_default_size_is_fast(make):
    start = time.perf_counter()
    image, _ = make((64, 128, 128), seed=0)
    assert time.perf_counter() - start < 10.0
    assert image.shape == (64, 128, 128)
