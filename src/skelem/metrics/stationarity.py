"""Z texture stationarity: do restored slices between the measured ones look like measured ones?

In a truly isotropic volume every XY slice has the same texture statistics whatever its position
relative to the acquired slices. A restoration that keeps sharp, noisy measured slices between
smooth invented ones shows bands every ``s`` slices in XZ/YZ views; this measure sees them.
"""

from __future__ import annotations

import numpy as np

from skelem.errors import InputError


def lateral_gradient_energy(volume: np.ndarray) -> np.ndarray:
    """Mean squared neighbour difference along X of every XY slice.

    Parameters
    ----------
    volume : numpy.ndarray
        ``(Z, Y, X)`` volume, at least 2 voxels along X.

    Returns
    -------
    numpy.ndarray
        ``(Z,)`` float64, in squared intensity units.
    """
    v = np.asarray(volume, dtype=np.float64)
    if v.ndim != 3 or v.shape[2] < 2:
        raise InputError(
            f"Texture stationarity needs a (Z, Y, X) volume with X >= 2, got {v.shape}."
        )
    return np.mean(np.diff(v, axis=2) ** 2, axis=(1, 2))


def z_texture_stationarity(volume: np.ndarray, factor: int, first_row: int = 0) -> dict:
    """Max/min over phases ``z mod s`` of the per-slice lateral gradient energy.

    Parameters
    ----------
    volume : numpy.ndarray
        Restored (or reference) volume ``(Z, Y, X)`` on the fine grid.
    factor : int
        Anisotropy factor ``s`` of the acquisition (phase 0 = acquired slices).
    first_row : int
        Global output row of ``volume[0]`` (0 when the volume starts on an acquired slice).

    Returns
    -------
    dict
        ``stationarity`` (max/min of the phase means, 1.0 for perfectly stationary texture; the
        isotropic reference gives about 1.0, interpolation 1.5, a regression network 2-3.5) and
        ``phase_energy`` (the ``s`` phase means, phase 0 first).
    """
    factor = int(factor)
    if factor < 2:
        raise InputError(f"Texture stationarity needs a factor of at least 2, got {factor}.")
    energy = lateral_gradient_energy(volume)
    phases = (first_row + np.arange(energy.size)) % factor
    means = np.array(
        [energy[phases == p].mean() if np.any(phases == p) else np.nan for p in range(factor)]
    )
    finite = means[np.isfinite(means)]
    if finite.size < 2 or finite.min() <= 0:
        ratio = float("nan")
    else:
        ratio = float(finite.max() / finite.min())
    return {"stationarity": ratio, "phase_energy": [float(m) for m in means]}
