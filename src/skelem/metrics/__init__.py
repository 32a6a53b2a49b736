"""Measurement functions on numpy volumes ``(Z, Y, X)`` (float64 internally).

- :mod:`~skelem.metrics.fidelity`: PSNR, SSIM, GMSD, per-orientation evaluation, border crop.
- :mod:`~skelem.metrics.fourier`: FSC (full and directional), FRC of cross-planes, self-FSC.
- :mod:`~skelem.metrics.spectra`: Z power spectra and their comparison with a reference.
- :mod:`~skelem.metrics.distribution`: a KID-style score on fixed, weight-free patch features.
- :mod:`~skelem.metrics.segmentation`: variation of information, adapted Rand error, membrane
  watershed.
- :mod:`~skelem.metrics.measured`: errors on the measured rows and on the rows in between.
- :mod:`~skelem.metrics.stationarity`: Z texture stationarity (bands every ``s`` slices).
- :mod:`~skelem.metrics.crossplane`: XZ-pass vs YZ-pass disagreement, XY stripe index and
  stripe excess.
- :func:`evaluate_arrays`: all of the above as one flat dict; :func:`reference_data_range` the
  intensity span it is given; :func:`reference_free_resolution` the self-FSC along Z and in XY;
  :func:`segmentation_scores` VI and adapted Rand error of a membrane map's watershed.
"""

from .crossplane import pass_disagreement, stripe_excess, stripe_index
from .distribution import kid
from .evaluate import evaluate_arrays, reference_data_range
from .fidelity import crop_border, gmsd, per_plane, psnr, ssim
from .fourier import (
    CorrelationCurve,
    frc_z,
    frequency_to_length,
    fsc,
    reference_free_resolution,
    resolution_from_fsc,
    self_fsc,
)
from .measured import between_slice_error, measured_slice_error
from .segmentation import (
    adapted_rand_error,
    membrane_watershed,
    segmentation_scores,
    variation_of_information,
)
from .spectra import (
    high_frequency_energy_ratio,
    log_spectral_distance,
    spectrum_ratio,
    z_power_spectrum,
)
from .stationarity import lateral_gradient_energy, z_texture_stationarity

__all__ = [
    "CorrelationCurve",
    "adapted_rand_error",
    "between_slice_error",
    "crop_border",
    "evaluate_arrays",
    "frc_z",
    "frequency_to_length",
    "fsc",
    "gmsd",
    "high_frequency_energy_ratio",
    "kid",
    "lateral_gradient_energy",
    "log_spectral_distance",
    "measured_slice_error",
    "membrane_watershed",
    "pass_disagreement",
    "per_plane",
    "psnr",
    "reference_data_range",
    "reference_free_resolution",
    "resolution_from_fsc",
    "segmentation_scores",
    "self_fsc",
    "spectrum_ratio",
    "ssim",
    "stripe_excess",
    "stripe_index",
    "variation_of_information",
    "z_power_spectrum",
    "z_texture_stationarity",
]
