"""The one-call evaluation: keys, JSON-friendliness and perfect scores for identical volumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skelem.errors import InputError
from skelem.metrics import evaluate_arrays

from .volumes import blur_z, texture

CORE_KEYS = {
    "psnr",
    "ssim",
    "ssim_xy",
    "ssim_xz",
    "ssim_yz",
    "gmsd",
    "gmsd_xy",
    "gmsd_xz",
    "gmsd_yz",
    "frc_z_auc",
    "frc_z_resolution_1_7",
    "frc_z_resolution_half",
    "log_spectral_distance",
    "hf_energy_ratio",
    "kid",
}


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return texture(seed=0, size=33).astype(np.float32)


def test_identical_volumes_score_perfectly(reference):
    scores = evaluate_arrays(reference, reference, data_range=2.0, kid_patches=128)
    assert set(scores) == CORE_KEYS
    assert scores["psnr"] == float("inf")
    assert scores["ssim"] == pytest.approx(1.0)
    assert scores["gmsd"] == pytest.approx(0.0, abs=1e-12)
    assert scores["frc_z_auc"] == pytest.approx(1.0)
    assert scores["frc_z_resolution_1_7"] == 0.5
    assert scores["log_spectral_distance"] == pytest.approx(0.0, abs=1e-9)
    assert scores["hf_energy_ratio"] == pytest.approx(1.0)
    assert scores["kid"] == 0.0


def test_blurred_prediction_with_measured_rows(reference):
    pred = blur_z(reference.astype(np.float64), 1.5)
    pred[::4] = reference[::4]  # measured rows kept exactly
    scores = evaluate_arrays(
        pred,
        reference,
        data_range=2.0,
        border=2,
        factor=4,
        acquired=reference[::4],
        kid_patches=128,
    )
    assert set(scores) == CORE_KEYS | {
        "between_mae",
        "between_psnr",
        "z_stationarity",
        "z_stationarity_reference",
        "measured_max_abs",
        "measured_mae",
    }
    assert all(isinstance(value, float) for value in scores.values())
    json.loads(json.dumps(scores))
    assert scores["measured_max_abs"] == 0.0 and scores["measured_mae"] == 0.0
    assert scores["between_mae"] > 0 and np.isfinite(scores["between_psnr"])
    assert scores["ssim"] < 1 and scores["hf_energy_ratio"] < 1 and scores["kid"] > 0


def test_acquired_without_factor_is_refused(reference):
    with pytest.raises(InputError, match="factor"):
        evaluate_arrays(reference, reference, 2.0, acquired=reference[::4])
