"""Fourier measures of resolution: FSC, FRC, self-FSC (Z power spectra: :mod:`.spectra`).

Conventions
-----------
- Volumes are ``(Z, Y, X)`` arrays of any real dtype; all computations are float64.
- Spatial frequencies are *normalised*: cycles per voxel along each axis, from 0 to 0.5
  (Nyquist). A frequency ``f`` corresponds to a period of ``1 / f`` voxels; multiply by the
  voxel size (:func:`frequency_to_length`) for a length. Shells (3-D) and rings (2-D) are binned
  on the radius ``|k| = sqrt(kz² + ky² + kx²)`` in these units: bin ``i`` of ``n`` holds radii
  in ``(i, i + 1] * 0.5 / n`` and is reported at its centre. The zero frequency and the
  frequencies beyond 0.5 (the corners of the cube) are left out.
- Before a Fourier transform each volume or slice has its mean removed and is multiplied by a
  separable window (``"tukey"``, alpha 0.25, by default; ``"hann"``; or ``None``) so that the
  edges of the box do not masquerade as high-frequency content shared by both inputs.
- Correlation curves hold NaN in bins that contain no frequency (or no energy), e.g. the low
  shells of a narrow cone on a small volume.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import fft as sp_fft
from scipy import sparse
from scipy.signal import windows

from skelem.errors import InputError

from ._arrays import as_float_array, as_float_pair, plane_stack, slice_indices

Direction = Literal["z", "xy"] | None
Window = Literal["tukey", "hann"] | None

#: Fixed-threshold criteria (van Heel & Schatz 2005 discuss their limits): 1/7 for two
#: independent half-data sets, 0.5 for a prediction against a reference.
THRESHOLD_1_7 = 1.0 / 7.0
THRESHOLD_HALF = 0.5
NYQUIST = 0.5
TUKEY_ALPHA = 0.25


@dataclass(frozen=True)
class CorrelationCurve:
    """A Fourier ring/shell correlation curve and its summary.

    Attributes
    ----------
    freqs : np.ndarray
        Bin centres, normalised frequency in cycles/voxel, shape ``(n_bins,)``.
    values : np.ndarray
        Correlation per bin (-1..1, NaN for empty bins), shape ``(n_bins,)``.
    auc : float
        Mean of the finite values, i.e. the area under the curve divided by the band width
        (1 for a perfect match, about 0 for unrelated inputs).
    resolution_1_7 : float
        First frequency where the curve drops below 1/7 (cycles/voxel; 0.5 if it never does).
    resolution_half : float
        Same for the 0.5 threshold.
    """

    freqs: np.ndarray
    values: np.ndarray
    auc: float
    resolution_1_7: float
    resolution_half: float

    def resolution_length(
        self, voxel_size: float, threshold: Literal["1/7", "0.5"] = "1/7"
    ) -> float:
        """Resolution as a length, in the unit of ``voxel_size`` (see :func:`frequency_to_length`).

        Parameters
        ----------
        voxel_size : float
            Voxel size along the measured direction (any length unit).
        threshold : {"1/7", "0.5"}
            Which crossing to convert.

        Returns
        -------
        float
        """
        freq = self.resolution_1_7 if threshold == "1/7" else self.resolution_half
        return frequency_to_length(freq, voxel_size)


def _window_1d(n: int, window: Window) -> np.ndarray:
    if window is None:
        return np.ones(n)
    if window == "tukey":
        return windows.tukey(n, alpha=TUKEY_ALPHA, sym=True)
    if window == "hann":
        return windows.hann(n, sym=True)
    raise InputError(f"window must be 'tukey', 'hann' or None, got {window!r}.")


def _prepare(array: np.ndarray, axes: Sequence[int], window: Window) -> np.ndarray:
    """Remove the mean over ``axes`` and apply the separable window along them."""
    out = np.ascontiguousarray(array - array.mean(axis=tuple(axes), keepdims=True))
    if window is None:
        return out
    taper = np.ones([array.shape[axis] if axis in axes else 1 for axis in range(array.ndim)])
    for axis in axes:
        shape = [1] * array.ndim
        shape[axis] = array.shape[axis]
        taper = taper * _window_1d(array.shape[axis], window).reshape(shape)
    out *= taper
    return out


def _rfft_weights(n_last: int) -> np.ndarray:
    """Hermitian weights of an rfft's last axis: interior columns stand for two frequencies."""
    weights = np.full(n_last // 2 + 1, 2.0)
    weights[0] = 1.0
    if n_last % 2 == 0:
        weights[-1] = 1.0
    return weights


def _check_bins(n_bins: int | None, shape: Sequence[int]) -> int:
    n_bins = max(min(shape) // 2, 1) if n_bins is None else int(n_bins)
    if n_bins < 1:
        raise InputError(f"n_bins must be at least 1, got {n_bins}.")
    return n_bins


def _bin_index(
    grids: Sequence[np.ndarray],
    n_bins: int,
    direction: Direction,
    cone_angle: float,
) -> np.ndarray:
    """Shell/ring index of every frequency (``-1`` when left out) for broadcastable grids.

    ``grids[0]`` is the z component; the direction cone is measured from the z axis.
    """
    radius = np.sqrt(sum(g**2 for g in grids))
    # Bin i holds the radii in (i, i + 1] * 0.5 / n_bins: the zero frequency (meaningless after
    # mean removal) is left out and the on-axis frequency 1/n of an n-voxel box lands in bin 0.
    index = np.ceil(radius / NYQUIST * n_bins - 1e-9).astype(np.int64) - 1
    keep = (radius > 0) & (index < n_bins)
    if direction is not None:
        if not 0.0 < cone_angle <= 90.0:
            raise InputError(f"cone_angle must be in (0, 90] degrees, got {cone_angle}.")
        kz = np.abs(grids[0])
        angle = np.deg2rad(cone_angle)
        if direction == "z":  # within cone_angle of the z axis
            keep = keep & (kz >= radius * np.cos(angle) - 1e-12)
        elif direction == "xy":  # within cone_angle of the XY plane
            keep = keep & (kz <= radius * np.sin(angle) + 1e-12)
        else:
            raise InputError(f"axis/direction must be None, 'z' or 'xy', got {direction!r}.")
    return np.where(keep, index, -1)


def _correlate(
    spec_a: np.ndarray,
    spec_b: np.ndarray,
    bins: np.ndarray,
    weights: np.ndarray,
    n_bins: int,
) -> np.ndarray:
    """Binned correlation ``Σ Re(A B*) / sqrt(Σ|A|² Σ|B|²)`` per group.

    Parameters
    ----------
    spec_a, spec_b : np.ndarray
        Spectra ``(G, *freq_shape)``: one correlation per leading index (slice of a stack).
    bins, weights : np.ndarray
        Bin index (``-1`` = left out) and Hermitian weight, broadcastable to ``freq_shape``.

    Returns
    -------
    np.ndarray
        ``(G, n_bins)``, NaN where a bin holds no frequency or no energy.
    """
    n_groups = spec_a.shape[0]
    freq_shape = spec_a.shape[1:]
    bins_flat = np.broadcast_to(bins, freq_shape).ravel()
    weights_flat = np.broadcast_to(weights, freq_shape).ravel()
    kept = np.nonzero(bins_flat >= 0)[0]
    binning = sparse.csr_matrix(
        (weights_flat[kept], (kept, bins_flat[kept])), shape=(bins_flat.size, n_bins)
    )
    a = spec_a.reshape(n_groups, -1)
    b = spec_b.reshape(n_groups, -1)
    cross = (a.real * b.real + a.imag * b.imag) @ binning
    power_a = (a.real**2 + a.imag**2) @ binning
    power_b = (b.real**2 + b.imag**2) @ binning
    denominator = np.sqrt(power_a * power_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, cross / denominator, np.nan)


def _bin_centres(n_bins: int) -> np.ndarray:
    return (np.arange(n_bins) + 0.5) * (NYQUIST / n_bins)


def fsc(
    vol_a: np.ndarray,
    vol_b: np.ndarray,
    n_bins: int | None = None,
    axis: Direction = None,
    cone_angle: float = 30.0,
    window: Window = "tukey",
) -> tuple[np.ndarray, np.ndarray]:
    """Fourier shell correlation of two volumes, optionally directional.

    Parameters
    ----------
    vol_a, vol_b : np.ndarray
        Volumes ``(Z, Y, X)`` of the same shape.
    n_bins : int, optional
        Number of shells between 0 and 0.5 cycles/voxel (default ``min(shape) // 2``).
    axis : {None, "z", "xy"}
        ``None`` for full shells; ``"z"`` keeps the double cone of half-angle ``cone_angle``
        around the z axis (axial resolution); ``"xy"`` keeps frequencies within ``cone_angle``
        of the XY plane (lateral resolution).
    cone_angle : float
        Half-angle in degrees (default 30).
    window : {"tukey", "hann", None}
        Apodisation applied after removing the mean.

    Returns
    -------
    freqs : np.ndarray
        Shell centres in cycles/voxel, shape ``(n_bins,)``.
    values : np.ndarray
        FSC per shell (-1..1; NaN for empty shells), shape ``(n_bins,)``.
    """
    a64, b64 = as_float_pair(vol_a, vol_b)
    n_bins = _check_bins(n_bins, a64.shape)
    spec_a = sp_fft.rfftn(_prepare(a64, (0, 1, 2), window))
    spec_b = sp_fft.rfftn(_prepare(b64, (0, 1, 2), window))
    nz, ny, nx = a64.shape
    grids = np.meshgrid(
        np.fft.fftfreq(nz), np.fft.fftfreq(ny), np.fft.rfftfreq(nx), indexing="ij", sparse=True
    )
    bins = _bin_index(grids, n_bins, axis, cone_angle)
    weights = _rfft_weights(nx)[None, None, :]
    return _bin_centres(n_bins), _correlate(spec_a[None], spec_b[None], bins, weights, n_bins)[0]


def resolution_from_fsc(
    freqs: np.ndarray, curve: np.ndarray, threshold: float = THRESHOLD_1_7
) -> float:
    """Frequency where a correlation curve first drops below ``threshold``.

    Parameters
    ----------
    freqs : np.ndarray
        Increasing frequencies (cycles/voxel), shape ``(n,)``.
    curve : np.ndarray
        Correlation values, shape ``(n,)``; NaN entries (empty bins) are skipped.
    threshold : float
        Default 1/7.

    Returns
    -------
    float
        The crossing, linearly interpolated between the last bin at or above ``threshold`` and
        the first bin below it (cycles/voxel). ``freqs[0]`` when the curve starts below the
        threshold; 0.5 (Nyquist) when it never crosses.
    """
    freqs = np.asarray(freqs, dtype=np.float64)
    curve = np.asarray(curve, dtype=np.float64)
    if freqs.shape != curve.shape or freqs.ndim != 1:
        raise InputError(f"freqs {freqs.shape} and curve {curve.shape} must be 1-D of one length.")
    finite = np.isfinite(curve)
    freqs, curve = freqs[finite], curve[finite]
    below = np.nonzero(curve < threshold)[0]
    if below.size == 0:
        return NYQUIST
    i = int(below[0])
    if i == 0:
        return float(freqs[0])
    f0, f1, c0, c1 = freqs[i - 1], freqs[i], curve[i - 1], curve[i]
    return float(f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0))


def frequency_to_length(freq: float, voxel_size: float) -> float:
    """Convert a normalised frequency (cycles/voxel) to a resolution length ``voxel_size / freq``.

    The result is in the unit of ``voxel_size`` (e.g. nm): Nyquist (0.5) gives two voxels;
    a non-positive frequency gives ``inf``.

    Parameters
    ----------
    freq : float
        Cycles/voxel.
    voxel_size : float
        Voxel size (any length unit).

    Returns
    -------
    float
    """
    return float(voxel_size) / freq if freq > 0 else float("inf")


def _summarise(freqs: np.ndarray, values: np.ndarray) -> CorrelationCurve:
    finite = values[np.isfinite(values)]
    return CorrelationCurve(
        freqs=freqs,
        values=values,
        auc=float(finite.mean()) if finite.size else float("nan"),
        resolution_1_7=resolution_from_fsc(freqs, values, THRESHOLD_1_7),
        resolution_half=resolution_from_fsc(freqs, values, THRESHOLD_HALF),
    )


def frc_z(
    pred: np.ndarray,
    ref: np.ndarray,
    n_bins: int | None = None,
    planes: Sequence[str] = ("xz", "yz"),
    cone_angle: float | None = None,
    max_slices: int | None = None,
    window: Window = "tukey",
) -> CorrelationCurve:
    """Fourier ring correlation of the XZ and YZ slices of a prediction against a reference.

    Every slice pair gets its own ring correlation (mean removed and windowed per slice);
    the curves are averaged over slices and planes (NaN-aware) and summarised.

    Parameters
    ----------
    pred, ref : np.ndarray
        Volumes ``(Z, Y, X)`` of the same shape.
    n_bins : int, optional
        Rings between 0 and 0.5 cycles/voxel (default ``min(shape) // 2``).
    planes : sequence of {"xz", "yz"}
        Orientations to include (``"xy"`` is accepted too).
    cone_angle : float, optional
        If given, keep only the frequencies within this half-angle (degrees) of the z axis:
        an axial-only FRC. ``None`` (default) uses full rings.
    max_slices : int, optional
        Use only this many evenly spaced slices per orientation; all by default.
    window : {"tukey", "hann", None}
        Apodisation per slice.

    Returns
    -------
    CorrelationCurve
        Curve (shape ``(n_bins,)``), area under it, and the 1/7 and 0.5 crossings.
    """
    pred64, ref64 = as_float_pair(pred, ref)
    n_bins = _check_bins(n_bins, pred64.shape)
    direction: Direction = None if cone_angle is None else "z"
    curves = []
    for plane in planes:
        pred_stack, ref_stack = plane_stack(pred64, plane), plane_stack(ref64, plane)
        indices = slice_indices(pred_stack.shape[0], max_slices)
        n_rows, n_cols = pred_stack.shape[1:]
        spec_a = sp_fft.rfftn(_prepare(pred_stack[indices], (1, 2), window), axes=(1, 2))
        spec_b = sp_fft.rfftn(_prepare(ref_stack[indices], (1, 2), window), axes=(1, 2))
        grids = np.meshgrid(
            np.fft.fftfreq(n_rows), np.fft.rfftfreq(n_cols), indexing="ij", sparse=True
        )
        bins = _bin_index(grids, n_bins, direction, cone_angle or 90.0)
        weights = _rfft_weights(n_cols)[None, :]
        curves.append(_correlate(spec_a, spec_b, bins, weights, n_bins))
    stacked = np.concatenate(curves, axis=0)
    with warnings.catch_warnings():  # all-NaN bins (no frequency in the ring) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.nanmean(stacked, axis=0)
    return _summarise(_bin_centres(n_bins), values)


_SPLITS: dict[str, tuple[tuple[slice, slice], tuple[slice, slice]]] = {
    "x": ((slice(None), slice(0, None, 2)), (slice(None), slice(1, None, 2))),
    "y": ((slice(0, None, 2), slice(None)), (slice(1, None, 2), slice(None))),
    "checkerboard": (
        (slice(0, None, 2), slice(0, None, 2)),
        (slice(1, None, 2), slice(1, None, 2)),
    ),
}


def self_fsc(
    vol: np.ndarray,
    direction: Direction = "z",
    split: Literal["x", "y", "checkerboard"] = "x",
    n_bins: int | None = None,
    cone_angle: float = 30.0,
    window: Window = "tukey",
) -> CorrelationCurve:
    """Resolution without a reference: directional FSC between two interleaved halves.

    Method. The volume is split laterally into two interleaved sub-volumes that keep every Z
    row: even and odd columns (``split="x"``), even and odd rows (``"y"``), or the diagonal
    pair (even, even) / (odd, odd) of the 2 x 2 lateral sub-lattices (``"checkerboard"``, as in
    one-image FRC, Koho et al. 2019). The one-voxel offset between the halves is undone exactly
    by a Fourier phase shift, frequencies are expressed in cycles per *original* voxel, and the
    FSC between the halves is computed in the double cone around z (``direction="z"``, axial
    resolution) or near the XY plane (``"xy"``), read at the 1/7 threshold.

    Caveat. The halves are not fully independent: they image the same sample one voxel apart,
    and any processing that mixes neighbouring voxels (the restoration itself, interpolation,
    denoising) correlates their noise, so the curve is optimistic. Report the result as a
    *relative* measure, to compare methods or settings on the same volume, not as an absolute
    resolution. Split laterally, the halves reach only 0.25 cycles/voxel along the split axis:
    the ``"xy"`` curve above 0.25 is carried by the other lateral axis only.

    Parameters
    ----------
    vol : np.ndarray
        Volume ``(Z, Y, X)`` (at least 4 voxels along the split axes).
    direction : {"z", "xy", None}
        Cone around the z axis, band near the XY plane, or full shells.
    split : {"x", "y", "checkerboard"}
        How to form the halves (default even/odd columns).
    n_bins : int, optional
        Shells between 0 and 0.5 cycles/voxel (default ``min(Z, Y, X) // 2``).
    cone_angle : float
        Half-angle in degrees of the cone or band (default 30).
    window : {"tukey", "hann", None}
        Apodisation of each half.

    Returns
    -------
    CorrelationCurve
        Curve in cycles/voxel (original grid) with its 1/7 (and 0.5) crossing.
    """
    vol64 = as_float_array(vol, "the volume")
    if split not in _SPLITS:
        raise InputError(f"split must be 'x', 'y' or 'checkerboard', got {split!r}.")
    (ya, xa), (yb, xb) = _SPLITS[split]
    half_a, half_b = vol64[:, ya, xa], vol64[:, yb, xb]
    common = tuple(min(na, nb) for na, nb in zip(half_a.shape, half_b.shape, strict=True))
    if min(common[1:]) < 2:
        raise InputError(f"the volume {vol64.shape} is too small to split into halves.")
    half_a = half_a[: common[0], : common[1], : common[2]]
    half_b = half_b[: common[0], : common[1], : common[2]]
    n_bins = _check_bins(n_bins, vol64.shape)
    step_y = 2.0 if split in ("y", "checkerboard") else 1.0
    step_x = 2.0 if split in ("x", "checkerboard") else 1.0
    nz, ny, nx = common
    kz = np.fft.fftfreq(nz)[:, None, None]
    ky = np.fft.fftfreq(ny, d=step_y)[None, :, None]
    kx = np.fft.rfftfreq(nx, d=step_x)[None, None, :]
    spec_a = sp_fft.rfftn(_prepare(half_a, (0, 1, 2), window))
    spec_b = sp_fft.rfftn(_prepare(half_b, (0, 1, 2), window))
    # half_b samples the volume one voxel further along each split axis: shift it back.
    offset_phase = (step_y - 1.0) * ky + (step_x - 1.0) * kx
    spec_b = spec_b * np.exp(-2j * np.pi * offset_phase)
    bins = _bin_index((kz, ky, kx), n_bins, direction, cone_angle)
    weights = _rfft_weights(nx)[None, None, :]
    values = _correlate(spec_a[None], spec_b[None], bins, weights, n_bins)[0]
    return _summarise(_bin_centres(n_bins), values)


def reference_free_resolution(volume: np.ndarray) -> dict[str, float]:
    """Directional self-FSC resolution of a volume along Z and in XY, needing no reference.

    Parameters
    ----------
    volume : np.ndarray
        Volume ``(Z, Y, X)``, e.g. a restoration.

    Returns
    -------
    dict of str to float
        ``self_fsc_z_resolution_1_7`` and ``self_fsc_xy_resolution_1_7``: where
        :func:`self_fsc` (default split and cone) crosses 1/7, in cycles/voxel.
    """
    return {
        f"self_fsc_{d}_resolution_1_7": float(self_fsc(volume, direction=d).resolution_1_7)
        for d in ("z", "xy")
    }


__all__ = [
    "CorrelationCurve",
    "frc_z",
    "frequency_to_length",
    "fsc",
    "reference_free_resolution",
    "resolution_from_fsc",
    "self_fsc",
]

