"""skelem.data: the axial degradation model, interpolation, normalisation, phantoms, training
pairs.

The names below are imported on first use, so that a restoration, which needs interpolation and
normalisation only, does not pay for the phantoms' SciPy import (~0.3 s of every ``skelem
restore``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from skelem._lazy import lazy_attributes

if TYPE_CHECKING:
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

_HOMES = {
    "degrade": "skelem.data.degradation",
    "degrade_torch": "skelem.data.degradation",
    "degrade_with": "skelem.data.degradation",
    "kept_indices": "skelem.data.degradation",
    "slice_profile_kernel": "skelem.data.degradation",
    "measured_rows": "skelem.data.interpolation",
    "output_length": "skelem.data.interpolation",
    "phase_weights": "skelem.data.interpolation",
    "upsample": "skelem.data.interpolation",
    "upsample_torch": "skelem.data.interpolation",
    "PercentileNormalizer": "skelem.data.normalize",
    "PairSampler": "skelem.data.pairs",
    "em_phantom": "skelem.data.phantoms",
    "lm_phantom": "skelem.data.phantoms",
}

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

__getattr__ = lazy_attributes(__name__, _HOMES)
