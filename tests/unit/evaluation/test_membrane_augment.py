"""The membrane predictor's restoration-like augmentation (issue 12, target 5)."""

from __future__ import annotations

import numpy as np
import torch

from skelem.evaluation.membrane import (
    AUGMENT_NOISE,
    MembranePredictor,
    restoration_augment,
)


def _patch() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((48, 48)).astype(np.float32)


def test_augment_is_drawn_from_the_generator_alone() -> None:
    x = _patch()
    a = restoration_augment(x, np.random.default_rng([3, 7]))
    b = restoration_augment(x, np.random.default_rng([3, 7]))
    assert a.dtype == np.float32 and a.shape == x.shape
    assert np.array_equal(a, b)


def test_augment_blurs_along_one_axis_or_adds_noise_and_keeps_the_mean() -> None:
    x = _patch()
    kinds = set()
    for seed in range(40):
        y = restoration_augment(x, np.random.default_rng(seed))
        if np.array_equal(y, x):
            kinds.add("none")
            continue
        d_rows = np.mean(np.diff(y, axis=0) ** 2) / np.mean(np.diff(x, axis=0) ** 2)
        d_cols = np.mean(np.diff(y, axis=1) ** 2) / np.mean(np.diff(x, axis=1) ** 2)
        if min(d_rows, d_cols) < 0.9:  # blurred along one axis: that axis loses the most
            kinds.add("blur")
            assert max(d_rows, d_cols) > 1.3 * min(d_rows, d_cols)
        else:  # noise alone: detail added along both axes, within the drawn range
            kinds.add("noise")
            assert min(d_rows, d_cols) >= 1.0
            assert np.std(y - x) <= AUGMENT_NOISE[1] * 1.2
        assert abs(float(y.mean() - x.mean())) < 0.05
    assert kinds == {"none", "blur", "noise"}


def _phantom() -> tuple[np.ndarray, np.ndarray]:
    z, y, x = np.mgrid[:24, :40, :40]
    labels = (1 + (x // 10) + 4 * (y // 10)).astype(np.int32)
    image = np.where(np.isin(x % 10, (0, 9)) | np.isin(y % 10, (0, 9)), 200, 80)
    noise = np.random.default_rng(1).normal(0, 5, image.shape)
    return (image + noise + 0 * z).astype(np.float32), labels


def test_predictor_trains_reproducibly_and_differently_with_augmentation() -> None:
    image, labels = _phantom()

    def weights(augment: bool) -> list[torch.Tensor]:
        p = MembranePredictor.train(
            image, labels, iterations=3, patch=32, batch=2, seed=0, augment=augment
        )
        return [t.detach().clone() for t in p.model.state_dict().values()]

    plain, aug, aug_again = weights(False), weights(True), weights(True)
    assert all(torch.equal(a, b) for a, b in zip(aug, aug_again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(plain, aug, strict=True))
