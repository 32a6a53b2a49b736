"""One call that measures a restored volume against an isotropic reference."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from skelem.errors import InputError

from ._arrays import as_float_pair, check_data_range
from .distribution import kid
from .fidelity import crop_border, gmsd, psnr, ssim
from .fourier import frc_z
from .measured import between_slice_error, measured_slice_error
from .spectra import high_frequency_energy_ratio, log_spectral_distance
from .stationarity import z_texture_stationarity

PLANES = ("xy", "xz", "yz")


def reference_data_range(reference: np.ndarray) -> float:
    """Span of the intensity scale of a reference, for PSNR, SSIM and GMSD.

    Parameters
    ----------
    reference : np.ndarray
        The isotropic reference in its stored dtype.

    Returns
    -------
    float
        The largest value of an integer dtype (e.g. 255 for uint8, 65535 for uint16), or
        ``max - min`` of the data for any other dtype (computed in float32, or float64 for
        float64 data).
    """
    reference = np.asarray(reference)
    if reference.dtype.kind in "ui":
        return float(np.iinfo(reference.dtype).max)
    dtype = np.result_type(reference.dtype, np.float32)
    return float(dtype.type(reference.max()) - dtype.type(reference.min()))


def evaluate_arrays(
    pred: np.ndarray,
    ref: np.ndarray,
    data_range: float,
    border: int | Sequence[int] = 0,
    factor: int | None = None,
    acquired: np.ndarray | None = None,
    offset: int = 0,
    max_slices: int | None = 64,
    kid_patches: int = 1024,
    seed: int = 0,
) -> dict[str, float]:
    """Every measure of :mod:`skelem.metrics` for one prediction/reference pair, as a flat dict.

    Sampling (for speed on large volumes, all deterministic): SSIM and the FRC use
    ``max_slices`` evenly spaced slices per orientation (first and last included; all when
    ``None``); PSNR, GMSD and the Z spectra use every voxel; KID uses ``kid_patches`` 16 x 16
    patches from 16 random XZ and 16 random YZ slices drawn with ``seed``. About 15 s for a
    pair of 250³ volumes on 2 CPU cores.

    Parameters
    ----------
    pred, ref : np.ndarray
        Restored volume and isotropic reference ``(Z, Y, X)`` of the same shape and units.
    data_range : float
        Span of the intensity scale (e.g. 1.0 for normalised data), for PSNR/SSIM/GMSD.
    border : int or sequence of int
        Voxels cropped from both ends of each axis (one width, or one per axis) before the
        full-reference measures, e.g. to leave out tile or padding effects.
    factor : int, optional
        Anisotropy factor ``s``; adds the error on the rows between measured rows.
    acquired : np.ndarray, optional
        Acquired slices ``(Za, Y, X)``; with ``factor`` adds the error on the measured rows.
    offset : int
        Row of the first measured slice (default 0).
    max_slices : int, optional
        Slices per orientation for SSIM and the FRC (default 64).
    kid_patches : int
        Patches for KID (default 1024).
    seed : int
        Seed of the KID sampling.

    Returns
    -------
    dict of str to float
        ``psnr`` (dB), ``ssim`` (mean of the three orientations) and ``ssim_xy/_xz/_yz``,
        ``gmsd`` (mean of orientations, lower is better) and ``gmsd_xy/_xz/_yz``,
        ``frc_z_auc``, ``frc_z_resolution_1_7`` and ``frc_z_resolution_half`` (cycles/voxel),
        ``log_spectral_distance`` (decades), ``hf_energy_ratio`` (Z band 0.25-0.5
        cycles/voxel), ``kid``; with ``factor``: ``between_mae``, ``between_psnr``,
        ``z_stationarity`` (max/min over phases ``z mod s`` of the lateral gradient energy)
        and ``z_stationarity_reference``; with ``factor`` and ``acquired``:
        ``measured_max_abs`` and ``measured_mae``. Measured and between-row errors use the
        uncropped volumes (the row grid must stay intact). Values are Python floats; PSNR is
        ``inf`` for identical inputs.
    """
    pred64, ref64 = as_float_pair(pred, ref)
    data_range = check_data_range(data_range)
    if acquired is not None and factor is None:
        raise InputError("comparing with the acquired slices needs the anisotropy factor.")
    pred_c, ref_c = crop_border(pred64, border), crop_border(ref64, border)

    results: dict[str, float] = {"psnr": psnr(pred_c, ref_c, data_range)}
    ssim_planes = {
        plane: ssim(pred_c, ref_c, data_range, plane=plane, max_slices=max_slices)
        for plane in PLANES
    }
    results["ssim"] = float(np.mean(list(ssim_planes.values())))
    results.update({f"ssim_{plane}": value for plane, value in ssim_planes.items()})
    gmsd_planes = {plane: gmsd(pred_c, ref_c, data_range, plane=plane) for plane in PLANES}
    results["gmsd"] = float(np.mean(list(gmsd_planes.values())))
    results.update({f"gmsd_{plane}": value for plane, value in gmsd_planes.items()})

    curve = frc_z(pred_c, ref_c, max_slices=max_slices)
    results["frc_z_auc"] = curve.auc
    results["frc_z_resolution_1_7"] = curve.resolution_1_7
    results["frc_z_resolution_half"] = curve.resolution_half
    results["log_spectral_distance"] = log_spectral_distance(pred_c, ref_c)
    results["hf_energy_ratio"] = high_frequency_energy_ratio(pred_c, ref_c)
    results["kid"] = kid(pred_c, ref_c, n_patches=kid_patches, seed=seed)

    if factor is not None:
        between = between_slice_error(pred64, ref64, factor, offset=offset, data_range=data_range)
        results["between_mae"] = between["mae"]
        results["between_psnr"] = between["psnr"]
        first_row = offset + (border if isinstance(border, int) else border[0])
        results["z_stationarity"] = z_texture_stationarity(pred_c, factor, first_row)[
            "stationarity"
        ]
        results["z_stationarity_reference"] = z_texture_stationarity(ref_c, factor, first_row)[
            "stationarity"
        ]
        if acquired is not None:
            measured = measured_slice_error(pred64, acquired, factor, offset=offset)
            results["measured_max_abs"] = measured["max_abs"]
            results["measured_mae"] = measured["mae"]
    return {key: float(value) for key, value in results.items()}


__all__ = ["evaluate_arrays", "reference_data_range"]
