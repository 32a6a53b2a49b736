"""Full-reference fidelity measures: PSNR, SSIM, GMSD, slice-wise evaluation per orientation.

All functions take a prediction and a reference of the same shape, either one volume
``(Z, Y, X)`` or one 2-D slice ``(H, W)``, in the same intensity units, and compute in float64.
``data_range`` is the span of the intensity scale (``1.0`` for data normalised to [0, 1],
``255`` for 8-bit images); it is given, never estimated, so that scores are comparable across
volumes.

Slices of an orientation (see :func:`per_plane`): ``"xy"`` slices are ``vol[z]`` (shape
``(Y, X)``), ``"xz"`` slices ``vol[:, y]`` (shape ``(Z, X)``), ``"yz"`` slices ``vol[:, :, x]``
(shape ``(Z, Y)``); in XZ/YZ slices the rows are Z.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

from skelem.errors import InputError

from ._arrays import as_float_pair, check_data_range, plane_stack, slice_indices

#: Gaussian SSIM window used everywhere (Wang et al. 2004): sigma 1.5 px, truncated at 3.5 sigma,
#: i.e. an 11 x 11 window; slices must be at least this large.
SSIM_SIGMA = 1.5
SSIM_MIN_SIDE = 11

#: GMSD stability constant for intensities scaled to [0, 1] (Xue et al. 2014 use T = 170 on 0-255).
GMSD_C = 170.0 / 255.0**2

PLANES = ("xy", "xz", "yz")


def psnr(pred: np.ndarray, ref: np.ndarray, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB over all voxels.

    Parameters
    ----------
    pred, ref : np.ndarray
        Prediction and reference of the same shape, ``(Z, Y, X)`` or ``(H, W)``.
    data_range : float
        Span of the intensity scale (e.g. ``1.0`` for [0, 1] data).

    Returns
    -------
    float
        ``10 log10(data_range**2 / MSE)`` in dB; ``inf`` when the arrays are identical.
    """
    pred64, ref64 = as_float_pair(pred, ref, ndims=(2, 3))
    data_range = check_data_range(data_range)
    mse = float(np.mean((pred64 - ref64) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def _ssim_2d(pred: np.ndarray, ref: np.ndarray, data_range: float) -> float:
    if min(pred.shape) < SSIM_MIN_SIDE:
        raise InputError(
            f"SSIM needs slices of at least {SSIM_MIN_SIDE} x {SSIM_MIN_SIDE} pixels, "
            f"got {pred.shape}."
        )
    return float(
        structural_similarity(
            pred,
            ref,
            data_range=data_range,
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
        )
    )


def ssim(
    pred: np.ndarray,
    ref: np.ndarray,
    data_range: float,
    plane: str = "xy",
    max_slices: int | None = None,
) -> float:
    """Structural similarity: 2-D SSIM per slice, averaged over the slices of one orientation.

    Uses :func:`skimage.metrics.structural_similarity` with a Gaussian window (sigma 1.5 px,
    11 x 11), population covariances and the constants ``K1 = 0.01``, ``K2 = 0.03`` of
    Wang et al. (2004). The mean SSIM of a slice excludes a 5-pixel border (skimage convention).

    Parameters
    ----------
    pred, ref : np.ndarray
        Prediction and reference, ``(Z, Y, X)`` volumes or ``(H, W)`` slices; slices must be at
        least 11 x 11 pixels.
    data_range : float
        Span of the intensity scale.
    plane : {"xy", "xz", "yz"}
        Orientation of the slices for a volume (ignored for 2-D input).
    max_slices : int, optional
        Evaluate only this many evenly spaced slices (first and last included); all by default.

    Returns
    -------
    float
        Mean SSIM, 1 for identical inputs (range -1..1, higher is better).
    """
    pred64, ref64 = as_float_pair(pred, ref, ndims=(2, 3))
    data_range = check_data_range(data_range)
    if pred64.ndim == 2:
        return _ssim_2d(pred64, ref64, data_range)
    pred_stack, ref_stack = plane_stack(pred64, plane), plane_stack(ref64, plane)
    indices = slice_indices(pred_stack.shape[0], max_slices)
    return float(np.mean([_ssim_2d(pred_stack[i], ref_stack[i], data_range) for i in indices]))


def _block_mean_2x2(stack: np.ndarray) -> np.ndarray:
    """Average 2 x 2 blocks of the last two axes of ``(N, H, W)`` (odd trailing row/col dropped)."""
    n, h, w = stack.shape
    h2, w2 = h // 2, w // 2
    return stack[:, : 2 * h2, : 2 * w2].reshape(n, h2, 2, w2, 2).mean(axis=(2, 4))


def _gradient_magnitude(stack: np.ndarray) -> np.ndarray:
    """Prewitt gradient magnitude (kernels divided by 3) of each slice of ``(N, H, W)``."""
    smooth = np.array([1.0, 1.0, 1.0]) / 3.0
    diff = np.array([1.0, 0.0, -1.0])
    grad_rows = ndimage.correlate1d(
        ndimage.correlate1d(stack, smooth, axis=2, mode="nearest"), diff, axis=1, mode="nearest"
    )
    grad_cols = ndimage.correlate1d(
        ndimage.correlate1d(stack, smooth, axis=1, mode="nearest"), diff, axis=2, mode="nearest"
    )
    return np.hypot(grad_rows, grad_cols)


def _gmsd_stack(
    pred_stack: np.ndarray, ref_stack: np.ndarray, data_range: float, downsample: bool
) -> np.ndarray:
    """GMSD of every slice of two ``(N, H, W)`` stacks; returns shape ``(N,)``."""
    pred_scaled = pred_stack / data_range
    ref_scaled = ref_stack / data_range
    if downsample:
        pred_scaled, ref_scaled = _block_mean_2x2(pred_scaled), _block_mean_2x2(ref_scaled)
    if min(pred_scaled.shape[1:]) < 2:
        raise InputError(f"GMSD needs slices of at least 4 x 4 pixels, got {pred_stack.shape[1:]}.")
    gm_pred = _gradient_magnitude(pred_scaled)
    gm_ref = _gradient_magnitude(ref_scaled)
    similarity = (2.0 * gm_pred * gm_ref + GMSD_C) / (gm_pred**2 + gm_ref**2 + GMSD_C)
    n = similarity.shape[0]
    return similarity.reshape(n, -1).std(axis=1, ddof=1)


def gmsd(
    pred: np.ndarray,
    ref: np.ndarray,
    data_range: float,
    plane: str = "xy",
    max_slices: int | None = None,
    downsample: bool = True,
) -> float:
    """Gradient magnitude similarity deviation (Xue et al. 2014), 2-D per slice, averaged.

    An offline, weight-free perception-style measure: the standard deviation over a slice of the
    local gradient-magnitude similarity ``(2 g_p g_r + c) / (g_p² + g_r² + c)``, with Prewitt
    gradients (kernels / 3) on intensities scaled by ``1 / data_range``, ``c = 170 / 255²`` and,
    as in the reference implementation, a 2 x 2 average-and-subsample first. Borders are
    replicated (instead of zero-padded) so that the slice edge is not taken for an edge.

    Parameters
    ----------
    pred, ref : np.ndarray
        Prediction and reference, ``(Z, Y, X)`` volumes or ``(H, W)`` slices (at least 4 x 4).
    data_range : float
        Span of the intensity scale.
    plane : {"xy", "xz", "yz"}
        Orientation of the slices for a volume (ignored for 2-D input).
    max_slices : int, optional
        Evaluate only this many evenly spaced slices; all by default.
    downsample : bool
        Apply the 2 x 2 average-and-subsample of the original method (default True).

    Returns
    -------
    float
        Mean GMSD over the slices: 0 for identical inputs, lower is better (typically < 0.35).
    """
    pred64, ref64 = as_float_pair(pred, ref, ndims=(2, 3))
    data_range = check_data_range(data_range)
    if pred64.ndim == 2:
        return float(_gmsd_stack(pred64[None], ref64[None], data_range, downsample)[0])
    pred_stack, ref_stack = plane_stack(pred64, plane), plane_stack(ref64, plane)
    indices = slice_indices(pred_stack.shape[0], max_slices)
    return float(
        np.mean(_gmsd_stack(pred_stack[indices], ref_stack[indices], data_range, downsample))
    )


def per_plane(
    metric_fn: Callable[..., float],
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    planes: Sequence[str] = PLANES,
    max_slices: int | None = None,
    **kwargs: object,
) -> dict[str, float]:
    """Evaluate a 2-D metric slice by slice along each orientation and average per orientation.

    Parameters
    ----------
    metric_fn : callable
        ``metric_fn(pred_slice, ref_slice, **kwargs) -> float`` on ``(H, W)`` slices, e.g.
        :func:`psnr`, :func:`ssim` or :func:`gmsd`.
    pred, ref : np.ndarray
        Prediction and reference volumes ``(Z, Y, X)`` of the same shape.
    planes : sequence of {"xy", "xz", "yz"}
        Orientations to evaluate (all three by default).
    max_slices : int, optional
        Evaluate only this many evenly spaced slices per orientation; all by default.
    **kwargs
        Passed to ``metric_fn`` (e.g. ``data_range=1.0``).

    Returns
    -------
    dict
        ``{"xy": mean, "xz": mean, "yz": mean}`` (restricted to ``planes``). A slice-wise PSNR
        mean is ``inf`` as soon as one slice is identical.
    """
    pred64, ref64 = as_float_pair(pred, ref)
    result: dict[str, float] = {}
    for plane in planes:
        pred_stack, ref_stack = plane_stack(pred64, plane), plane_stack(ref64, plane)
        indices = slice_indices(pred_stack.shape[0], max_slices)
        values = [float(metric_fn(pred_stack[i], ref_stack[i], **kwargs)) for i in indices]
        result[plane] = float(np.mean(values))
    return result


def crop_border(volume: np.ndarray, border: int | Sequence[int]) -> np.ndarray:
    """Remove ``border`` voxels from both ends of each axis.

    Parameters
    ----------
    volume : np.ndarray
        Array of any dimensionality, typically ``(Z, Y, X)``.
    border : int or sequence of int
        One width for every axis, or one per axis (e.g. ``(0, 8, 8)`` keeps every Z row).

    Returns
    -------
    np.ndarray
        A view of the cropped array.
    """
    array = np.asarray(volume)
    widths = [int(border)] * array.ndim if np.isscalar(border) else [int(b) for b in border]
    if len(widths) != array.ndim:
        raise InputError(f"border needs one width per axis ({array.ndim}), got {border}.")
    if any(w < 0 for w in widths):
        raise InputError(f"border widths must be non-negative, got {border}.")
    if any(2 * w >= n for w, n in zip(widths, array.shape, strict=True)):
        raise InputError(f"a border of {border} leaves nothing of a volume of shape {array.shape}.")
    return array[tuple(slice(w, n - w) for w, n in zip(widths, array.shape, strict=True))]


__all__ = ["crop_border", "gmsd", "per_plane", "psnr", "ssim"]
