"""skelem.data: the axial degradation model, interpolation, normalisation, phantoms, training
pairs."""

from skelem.data.degradation import (
    degrade,
    degrade_torch,
    degrade_with,
    kept_indices,
    slice_profile_kernel,
)
from skelem.data.interpolation import (
    measured_rows,
    output_length,
    phase_weights,
    upsample,
    upsample_torch,
)
from skelem.data.normalize import PercentileNormalizer
from skelem.data.pairs import PairSampler
from skelem.data.phantoms import em_phantom, lm_phantom

__all__ = [
    "PairSampler",
    "PercentileNormalizer",
    "degrade",
    "degrade_torch",
    "degrade_with",
    "em_phantom",
    "kept_indices",
    "lm_phantom",
    "measured_rows",
    "output_length",
    "phase_weights",
    "slice_profile_kernel",
    "upsample",
    "upsample_torch",
]
