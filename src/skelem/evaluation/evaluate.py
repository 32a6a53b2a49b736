"""``skelem evaluate``: compare a restored volume with an isotropic reference (files or arrays)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from skelem.errors import InputError
from skelem.grid import restored_length
from skelem.io import open_volume
from skelem.io.validate import validate_volume
from skelem.metrics import (
    evaluate_arrays,
    reference_data_range,
    reference_free_resolution,
    segmentation_scores,
)

if TYPE_CHECKING:  # pragma: no cover
    from skelem.evaluation.membrane import MembranePredictor


def evaluate_volumes(
    prediction: str,
    reference: str,
    labels: str | None = None,
    factor: float | None = None,
    acquired: str | None = None,
    border: int = 8,
    membrane: MembranePredictor | None = None,
) -> dict:
    """Measure a restored volume file against an isotropic reference file.

    All measures of :func:`skelem.metrics.evaluate_arrays`, plus the reference-free directional
    resolution (:func:`skelem.metrics.reference_free_resolution`) of the prediction, and
    membrane segmentation scores (:func:`skelem.metrics.segmentation_scores`) when ``labels``
    and a trained ``membrane`` predictor are given. The data range is
    :func:`skelem.metrics.reference_data_range` of the reference (e.g. 255 for uint8, the
    min-max span for float data); it is reported in the result.

    Parameters
    ----------
    prediction, reference : str
        Volume files ``(Z, Y, X)``; the prediction is compared with the reference's first
        slices (a simulated acquisition restores to ``s*(Z_acquired-1)+1`` slices).
    labels : str, optional
        Ground-truth instance labels of the reference's shape.
    factor : float, optional
        Anisotropy factor (inferred from ``acquired`` when not given).
    acquired : str, optional
        The acquired volume, to measure the error on the measured rows.
    border : int
        Voxels left out at each border for the full-reference measures.
    membrane : MembranePredictor, optional
        Needed with ``labels``: the predictor trained by ``skelem benchmark --membrane-train``.

    Returns
    -------
    dict
        The measures (floats), plus ``prediction``, ``reference``, ``data_range``, ``border``
        and ``reference_slices_used``.
    """
    pred_vol, ref_vol = open_volume(prediction), open_volume(reference)
    for vol in (pred_vol, ref_vol):
        validate_volume(vol, min_slices=3)
    nz = pred_vol.shape[0]
    # a simulated acquisition restores to s*(Z_acquired-1)+1 slices: compare with the
    # reference's first ones
    if pred_vol.shape[1:] != ref_vol.shape[1:] or nz > ref_vol.shape[0]:
        raise InputError(
            f"The prediction {pred_vol.shape} and the reference {ref_vol.shape} differ in shape "
            "(Z, Y, X)."
        )
    pred = np.asarray(pred_vol.data[...], dtype=np.float32)
    ref_raw = np.asarray(ref_vol.data[:nz])
    ref = ref_raw.astype(np.float32)
    data_range = reference_data_range(ref_raw)
    acq = None
    if acquired is not None:
        acq_vol = open_volume(acquired)
        acq = np.asarray(acq_vol.data[...], dtype=np.float32)
        if factor is None:
            factor = (pred.shape[0] - 1) / max(acq.shape[0] - 1, 1)
        expected = restored_length(acq.shape[0], int(round(factor)))
        if acq.shape[1:] != pred.shape[1:] or expected != pred.shape[0]:
            raise InputError(
                f"The acquisition {acquired} {acq.shape} does not fit the prediction {pred.shape} "
                f"at factor {factor:g} (it would restore to {expected} slices)."
            )
    result: dict = {"prediction": prediction, "reference": reference, "data_range": data_range,
                    "border": border, "reference_slices_used": nz}
    result.update(evaluate_arrays(pred, ref, data_range, border=border,
                                  factor=int(round(factor)) if factor else None, acquired=acq))
    result.update(reference_free_resolution(pred))
    if labels is not None:
        lab = np.asarray(open_volume(labels).data[...])
        if lab.shape != ref.shape:
            raise InputError(
                f"The labels {lab.shape} and the reference {ref.shape} differ in shape."
            )
        if membrane is None:
            raise InputError(
                "Segmentation scores need a membrane predictor trained on another volume: pass "
                "--membrane-model (written by `skelem benchmark --membrane-train`)."
            )
        result.update(segmentation_scores(membrane.predict(pred), lab))
    return result


def format_summary(result: dict) -> str:
    """A few readable lines of the main measures.

    Parameters
    ----------
    result : dict
        A result of :func:`evaluate_volumes`.

    Returns
    -------
    str
        Fidelity, perception, resolution and, when present, measured-row and segmentation lines.
    """

    def f(key: str, pattern: str = "{:.3f}") -> str:
        value = result.get(key)
        if value is None:
            return "-"
        return "inf" if isinstance(value, float) and math.isinf(value) else pattern.format(value)

    lines = [
        f"PSNR {f('psnr', '{:.2f}')} dB   SSIM {f('ssim')} (xy {f('ssim_xy')}, "
        f"xz {f('ssim_xz')}, yz {f('ssim_yz')})   "
        f"data range {result['data_range']:g}, border {result['border']}",
        f"GMSD {f('gmsd', '{:.4f}')}   KID {f('kid', '{:.4f}')}   "
        f"Z-spectrum LSD {f('log_spectral_distance')}   "
        f"HF energy ratio {f('hf_energy_ratio', '{:.2f}')}",
        f"FRC(Z) with reference: AUC {f('frc_z_auc')}, 1/7 at {f('frc_z_resolution_1_7')} "
        "cycles/voxel;   "
        f"self-FSC 1/7: Z {f('self_fsc_z_resolution_1_7')}, "
        f"XY {f('self_fsc_xy_resolution_1_7')} cycles/voxel",
    ]
    if "measured_max_abs" in result:
        lines.append(f"measured slices: max |error| {f('measured_max_abs', '{:.3g}')}; "
                     f"between slices PSNR {f('between_psnr', '{:.2f}')} dB")
    if "vi" in result:
        lines.append(f"segmentation: VI {f('vi')} (split {f('vi_split')}, "
                     f"merge {f('vi_merge')}), adapted Rand error {f('adapted_rand')}")
    return "\n".join(lines)
