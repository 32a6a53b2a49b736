"""Z texture stationarity: stationary texture scores ~1, sharp measured rows between smooth ones
do not."""

from __future__ import annotations

import numpy as np
import pytest

from skelem.errors import InputError
from skelem.metrics import evaluate_arrays, z_texture_stationarity


def test_stationary_noise_scores_about_one():
    vol = np.random.default_rng(0).normal(size=(64, 48, 48))
    out = z_texture_stationarity(vol, 4)
    assert out["stationarity"] == pytest.approx(1.0, abs=0.05)
    assert len(out["phase_energy"]) == 4


def test_sharp_measured_rows_between_smooth_ones_give_bands():
    rng = np.random.default_rng(1)
    vol = rng.normal(size=(33, 40, 40))
    vol[np.arange(33) % 8 != 0] *= 0.5  # invented slices with a quarter of the gradient energy
    out = z_texture_stationarity(vol, 8)
    assert out["stationarity"] == pytest.approx(4.0, rel=0.1)
    assert np.argmax(out["phase_energy"]) == 0


def test_first_row_shifts_the_phase():
    vol = np.ones((17, 8, 8))
    vol[3::4] = np.indices((8, 8)).sum(0)  # texture on rows 3, 7, 11, ...
    shifted = z_texture_stationarity(vol, 4, first_row=1)  # global rows 4, 8, 12: phase 0
    assert shifted["phase_energy"][0] > 0 and shifted["phase_energy"][1] == 0


def test_evaluate_arrays_reports_it_for_prediction_and_reference():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(33, 32, 32)).astype(np.float32)
    smooth = ref.copy()
    smooth[np.arange(33) % 4 != 0] *= 0.3
    scores = evaluate_arrays(smooth, ref, data_range=8.0, border=2, factor=4)
    assert scores["z_stationarity_reference"] == pytest.approx(1.0, abs=0.1)
    assert scores["z_stationarity"] > 5


def test_refuses_a_two_dimensional_array():
    with pytest.raises(InputError, match="Z, Y, X"):
        z_texture_stationarity(np.zeros((8, 8)), 4)
