"""Random streams named by keys: the same keys draw the same numbers, different keys do not."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from skelem.seeds import derive_seed, numpy_rng, torch_generator
from skelem.training import streams


def test_the_same_keys_give_the_same_draws() -> None:
    assert derive_seed(0, 7, 3) == derive_seed(0, 7, 3)
    assert np.array_equal(numpy_rng(5, 2, 1).normal(size=16), numpy_rng(5, 2, 1).normal(size=16))
    a = torch.randn(16, generator=torch_generator(5, 2, 1))
    assert torch.equal(a, torch.randn(16, generator=torch_generator(5, 2, 1)))


def test_distinct_keys_give_distinct_streams() -> None:
    keys = [(0,), (1,), (0, 1), (1, 0, 1), (0, 1, 1), (1, 1, 1), (5, 0, 2), (5, 1, 2), (6, 0, 2)]
    seeds = {derive_seed(*k) for k in keys}
    assert len(seeds) == len(keys)
    draws = [tuple(numpy_rng(*k).integers(0, 2**62, size=4)) for k in keys]
    assert len(set(draws)) == len(keys)
    torch_draws = [tuple(torch.randint(0, 2**62, (4,), generator=torch_generator(*k)).tolist())
                   for k in keys]
    assert len(set(torch_draws)) == len(keys)


def test_a_numpy_stream_of_two_keys_is_the_sampler_stream_of_old() -> None:
    """``numpy_rng(seed, step)`` is ``default_rng([seed, step])``: batches kept their streams."""
    assert np.array_equal(numpy_rng(3, 11).random(8), np.random.default_rng([3, 11]).random(8))


def test_negative_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        derive_seed(1, -1)


def test_training_streams_are_distinct_nonzero_keys() -> None:
    """Zero would collide with the shorter key (SeedSequence pads entropy with zeros)."""
    assert derive_seed(4, 9) == derive_seed(4, 9, 0)  # why a stream key is never 0
    keys = {name: value for name, value in vars(streams).items() if name.startswith("STREAM_")}
    assert len(keys) >= 6 and all(v > 0 for v in keys.values())
    assert len(set(keys.values())) == len(keys)
    for (_, a), (_, b) in itertools.combinations(keys.items(), 2):
        assert derive_seed(0, 0, a) != derive_seed(0, 0, b)
