"""The lever/seed/pretrained scripts' shared protocol: simulate, crop, restore, score.

A Y half (125 rows) of a 250^3 isotropic FIB-SEM volume is degraded by keeping every s-th Z slice
(profile none); models train on the whole anisotropic half; the central 96 x 96 lateral crop is
restored and scored against the isotropic original (border 8, data range 255), with the Z texture
stationarity beside the fidelity and perception measures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skelem.evaluation.benchmark import simulate_acquisition
from skelem.io import Volume, open_volume
from skelem.metrics import evaluate_arrays
from skelem.metrics.stationarity import z_texture_stationarity

CROP = (slice(None), slice(14, 110), slice(77, 173))  # central 96 x 96 of a 125 x 250 half
#: the Y halves of a 250^3 volume: ``tuning`` (never scored by the headline benchmark), ``scored``
HALVES = {"tuning": slice(0, 125), "scored": slice(125, 250)}


@dataclass
class CropCase:
    """The anisotropic training volume, the crop to restore and its ground truth."""

    volume: Volume
    eval_in: Volume
    eval_gt: np.ndarray
    factor: int

    def score(self, artifact, **options) -> dict:
        """Restore the crop with ``RestoreOptions(**options)`` and score it (plus seconds)."""
        from skelem.inference.restore import RestoreOptions, restore_volume

        t = time.perf_counter()
        pred = restore_volume(self.eval_in, artifact, self.factor, RestoreOptions(**options),
                              input_units=True)
        seconds = time.perf_counter() - t
        row = self.scores(pred)
        row["restore_s"] = round(seconds, 2)
        return row

    def scores(self, pred: np.ndarray) -> dict:
        """Fidelity, perception and Z stationarity of a restoration ``pred`` of the crop."""
        s = evaluate_arrays(pred, self.eval_gt, data_range=255.0, border=8, factor=self.factor,
                            acquired=self.eval_in.data.astype(np.float32))
        row = {k: float(s[k]) for k in ("psnr", "ssim", "hf_energy_ratio",
                                        "log_spectral_distance", "kid")}
        row["stationarity"] = z_texture_stationarity(pred[:, 8:-8, 8:-8],
                                                     self.factor)["stationarity"]
        return row

    def cubic_psnr(self) -> float:
        """PSNR of cubic interpolation of the crop (the baseline every gain is counted from)."""
        from skelem.inference.restore import RestoreOptions, restore_volume

        cubic = restore_volume(self.eval_in, None, self.factor, RestoreOptions(method="cubic"),
                               input_units=True)
        return float(evaluate_arrays(cubic, self.eval_gt, data_range=255.0, border=8,
                                     factor=self.factor)["psnr"])


def crop_case(raw: Path, y_half: slice, factor: int, name: str) -> CropCase:
    """Simulate ``factor`` on ``raw[:, y_half]`` and cut the evaluation crop."""
    reference = np.asarray(open_volume(raw).data[:, y_half, :])
    acquired, gt = simulate_acquisition(reference, factor)
    voxel = (0.01 * factor, 0.01, 0.01)
    return CropCase(
        Volume(acquired, voxel, "micrometer", f"{name} x{factor}"),
        Volume(np.ascontiguousarray(acquired[CROP]), voxel, "micrometer", f"{name} crop"),
        gt[CROP].astype(np.float32), factor,
    )


#: the benchmark volume (``../shared/data``, see its PROVENANCE.md)
T2_RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "fibsem_medulla_t2" / "raw.tif"


def t2_case(half: str, factor: int) -> CropCase:
    """:func:`crop_case` of ``fibsem_medulla_t2``'s ``half`` (a key of :data:`HALVES`)."""
    return crop_case(T2_RAW, HALVES[half], factor, "t2")
