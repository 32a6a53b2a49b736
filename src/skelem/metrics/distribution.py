"""A KID-style distribution distance on fixed, weight-free texture features.

The kernel inception distance (Bińkowski et al. 2018) compares two sets of image features with
the unbiased squared maximum mean discrepancy (MMD²) under the polynomial kernel
``k(x, y) = (x·y / d + 1)³``. Inception features need downloaded weights, so here every patch
is described by a fixed, hand-made feature vector instead (no learned parameter anywhere):

- local mean and standard deviation;
- a 9-bin histogram of the gradient magnitude (central differences; log-spaced edges from
  0.005 to 0.64 in normalised intensity per pixel, fractions of the patch);
- the RMS of the discrete Laplacian;
- the RMS responses of difference-of-Gaussians band-pass filters at sigma 1, 2 and 4 px
  (ratio 1.6);
- the RMS amplitudes of 12 complex Gabor filters (3 centre frequencies 0.25, 0.125 and
  0.0625 cycles/px with a bandwidth of half the centre frequency, 4 orientations 0°, 45°, 90°,
  135° measured from the slice columns), defined in the Fourier domain.

That is 27 features per 16 x 16 patch. Patches come from XZ and YZ slices by default (rows are
Z), so orientation-selective filters see the axial texture that restorations get wrong.
Before feature extraction both volumes are mapped with the *reference's* 0.5 and 99.5
percentiles to about [0, 1], and the features are standardised with the mean and standard
deviation of both feature sets pooled (a symmetric choice that keeps a feature constant in one
volume from blowing up), so the score ignores a common affine intensity change.

Sampling. For each plane ``n_slices`` slices are drawn at random, then ``n_patches`` patch
positions in total, spread evenly over planes and slices. The *same* slices and positions are
used in both volumes (paired samples), drawn from ``numpy.random.default_rng(seed)``: the score
is deterministic for a given seed, and exactly 0 for identical volumes because the paired
U-statistic leaves out the pairs (i, i).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from scipy import fft as sp_fft

from skelem.errors import InputError

from ._arrays import as_float_pair, check_plane, plane_stack

PATCH_SIZE = 16
GRADIENT_EDGES = np.concatenate([[0.0], np.geomspace(0.005, 0.64, 8), [np.inf]])
DOG_SIGMAS = (1.0, 2.0, 4.0)
DOG_RATIO = 1.6
GABOR_FREQUENCIES = (0.25, 0.125, 0.0625)
GABOR_ORIENTATIONS_DEG = (0.0, 45.0, 90.0, 135.0)
N_FEATURES = (
    2
    + (len(GRADIENT_EDGES) - 1)
    + 1
    + len(DOG_SIGMAS)
    + len(GABOR_FREQUENCIES) * len(GABOR_ORIENTATIONS_DEG)
)
_PAD = 16


@functools.lru_cache(maxsize=4)
def _transfer_functions(shape: tuple[int, int]) -> np.ndarray:
    """Fourier transfer functions of the filter bank on a ``shape`` grid: ``(n_filters, H, W)``.

    Order: Laplacian, DoG (one per sigma), Gabor (frequency-major, then orientation).
    """
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    radius2 = fy**2 + fx**2
    filters = [-4.0 * (np.sin(np.pi * fy) ** 2 + np.sin(np.pi * fx) ** 2)]
    for sigma in DOG_SIGMAS:
        filters.append(
            np.exp(-2 * np.pi**2 * sigma**2 * radius2)
            - np.exp(-2 * np.pi**2 * (DOG_RATIO * sigma) ** 2 * radius2)
        )
    for freq in GABOR_FREQUENCIES:
        bandwidth = freq / 2.0
        for theta in np.deg2rad(GABOR_ORIENTATIONS_DEG):
            centre_y, centre_x = freq * np.sin(theta), freq * np.cos(theta)
            filters.append(
                np.exp(-((fy - centre_y) ** 2 + (fx - centre_x) ** 2) / (2 * bandwidth**2))
            )
    bank = np.stack([np.broadcast_to(f, shape) for f in filters])
    bank.flags.writeable = False  # cached: shared between calls
    return bank


def _gather_patches(maps: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Pixels of 16 x 16 patches at top-left ``(rows, cols)`` of ``(..., H, W)``.

    Returns ``(..., n, 16, 16)``.
    """
    offsets = np.arange(PATCH_SIZE)
    patch_rows = (rows[:, None] + offsets)[:, :, None]
    patch_cols = (cols[:, None] + offsets)[:, None, :]
    return maps[..., patch_rows, patch_cols]


def slice_patch_features(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Feature vectors of 16 x 16 patches of one normalised 2-D slice.

    Parameters
    ----------
    image : np.ndarray
        Slice ``(H, W)`` with intensities normalised to about [0, 1]; ``H, W >= 16``.
    rows, cols : np.ndarray
        Top-left corners of the patches, integer arrays of shape ``(n,)``.

    Returns
    -------
    np.ndarray
        Features ``(n, 27)`` in the order given in the module docstring.
    """
    image = np.asarray(image, dtype=np.float64)
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    height, width = image.shape
    # Reflect-pad against wrap-around, then up to a fast FFT length.
    fast_shape = (sp_fft.next_fast_len(height + 2 * _PAD), sp_fft.next_fast_len(width + 2 * _PAD))
    padded = np.pad(
        image,
        ((_PAD, fast_shape[0] - height - _PAD), (_PAD, fast_shape[1] - width - _PAD)),
        mode="reflect",
    )
    spectrum = sp_fft.fft2(padded)
    responses = sp_fft.ifft2(spectrum[None] * _transfer_functions(fast_shape), axes=(1, 2))
    responses = _gather_patches(responses, rows + _PAD, cols + _PAD)  # (F, n, 16, 16)
    n_real = 1 + len(DOG_SIGMAS)  # Laplacian and DoG responses are real (even filters)
    energies = np.concatenate(
        [responses[:n_real].real ** 2, responses[n_real:].real ** 2 + responses[n_real:].imag ** 2]
    ).mean(axis=(2, 3))
    pixels = _gather_patches(image, rows, cols)  # (n, 16, 16)
    gradient = np.hypot(*np.gradient(image))
    which_bin = np.digitize(_gather_patches(gradient, rows, cols), GRADIENT_EDGES[1:-1])
    n_hist = len(GRADIENT_EDGES) - 1
    histogram = (which_bin[..., None] == np.arange(n_hist)).mean(axis=(1, 2))  # (n, n_hist)
    return np.column_stack(
        [pixels.mean(axis=(1, 2)), pixels.std(axis=(1, 2)), histogram, np.sqrt(energies.T)]
    )


def _reference_scaling(ref: np.ndarray) -> tuple[float, float]:
    step = max(1, ref.size // 2_000_000)
    low, high = np.percentile(ref.ravel()[::step], [0.5, 99.5])
    scale = float(high - low)
    return float(low), scale if scale > 0 else 1.0


def paired_patch_features(
    pred_vol: np.ndarray,
    ref_vol: np.ndarray,
    planes: Sequence[str] = ("xz", "yz"),
    n_patches: int = 1024,
    n_slices: int = 16,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of the same random patches in two volumes (see the module docstring).

    Parameters
    ----------
    pred_vol, ref_vol : np.ndarray
        Prediction and reference ``(Z, Y, X)`` of one shape.
    planes : sequence of {"xy", "xz", "yz"}
        Orientations the slices are drawn from.
    n_patches : int
        Patches in all (at least 2), shared evenly by the drawn slices.
    n_slices : int
        Slices drawn per orientation.
    seed : int
        Seed of the slice and patch draws.

    Returns
    -------
    pred_features, ref_features : np.ndarray
        Unstandardised features, both of shape ``(n_patches, 27)``.
    """
    pred64, ref64 = as_float_pair(pred_vol, ref_vol)
    if n_patches < 2 or n_slices < 1:
        raise InputError(f"need n_patches >= 2 and n_slices >= 1, got {n_patches}, {n_slices}.")
    if not planes:
        raise InputError("planes must name at least one of 'xy', 'xz', 'yz'.")
    low, scale = _reference_scaling(ref64)
    rng = np.random.default_rng(seed)
    jobs = []
    for plane in planes:
        check_plane(plane)
        n_available, height, width = plane_stack(ref64, plane).shape
        if min(height, width) < PATCH_SIZE:
            raise InputError(
                f"{plane} slices of {height} x {width} pixels are smaller than a "
                f"{PATCH_SIZE} x {PATCH_SIZE} patch."
            )
        chosen = rng.choice(n_available, size=min(n_slices, n_available), replace=False)
        jobs.extend((plane, int(index)) for index in np.sort(chosen))
    counts = np.full(len(jobs), n_patches // len(jobs))
    counts[: n_patches % len(jobs)] += 1
    pred_parts, ref_parts = [], []
    for (plane, index), count in zip(jobs, counts, strict=True):
        if count == 0:
            continue
        ref_slice = plane_stack(ref64, plane)[index]
        pred_slice = plane_stack(pred64, plane)[index]
        rows = rng.integers(0, ref_slice.shape[0] - PATCH_SIZE + 1, size=count)
        cols = rng.integers(0, ref_slice.shape[1] - PATCH_SIZE + 1, size=count)
        pred_parts.append(slice_patch_features((pred_slice - low) / scale, rows, cols))
        ref_parts.append(slice_patch_features((ref_slice - low) / scale, rows, cols))
    return np.concatenate(pred_parts), np.concatenate(ref_parts)


def polynomial_mmd2_paired(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Unbiased MMD² with the cubic polynomial kernel for paired samples of equal size.

    ``MMD²_u = 1/(m(m-1)) Σ_{i≠j} [k(a_i,a_j) + k(b_i,b_j) - k(a_i,b_j) - k(a_j,b_i)]`` with
    ``k(x, y) = (x·y / d + 1)³``. Unbiased also for independent samples; may be slightly
    negative; exactly 0 when ``features_a == features_b``.

    Parameters
    ----------
    features_a, features_b : np.ndarray
        Feature matrices ``(m, d)`` of the same shape, ``m >= 2``.

    Returns
    -------
    float
        The unbiased MMD² estimate.
    """
    if features_a.shape != features_b.shape or features_a.ndim != 2 or features_a.shape[0] < 2:
        raise InputError(
            f"feature sets must be (m, d) of one shape with m >= 2, got {features_a.shape} "
            f"and {features_b.shape}."
        )
    m, d = features_a.shape

    def off_diagonal_sum(x: np.ndarray, y: np.ndarray) -> float:
        kernel = (x @ y.T / d + 1.0) ** 3
        return float(kernel.sum() - np.trace(kernel))

    total = (
        off_diagonal_sum(features_a, features_a)
        + off_diagonal_sum(features_b, features_b)
        - 2.0 * off_diagonal_sum(features_a, features_b)
    )
    return total / (m * (m - 1))


def kid(
    pred_vol: np.ndarray,
    ref_vol: np.ndarray,
    planes: Sequence[str] = ("xz", "yz"),
    n_patches: int = 1024,
    seed: int = 0,
    n_slices: int = 16,
) -> float:
    """KID-style distance between the patch-texture distributions of two volumes.

    Parameters
    ----------
    pred_vol, ref_vol : np.ndarray
        Volumes ``(Z, Y, X)`` of the same shape, in the same intensity units (any range: both
        are scaled by the reference's 0.5-99.5 percentiles); slices at least 16 x 16.
    planes : sequence of {"xy", "xz", "yz"}
        Slice orientations to sample patches from (default the cross-planes XZ and YZ).
    n_patches : int
        Patches in total (default 1024), spread evenly over planes and sampled slices.
    seed : int
        Seed of the slice and position sampling; the result is deterministic for a seed.
    n_slices : int
        Slices drawn per plane (default 16; all of them if the volume has fewer).

    Returns
    -------
    float
        Unbiased MMD² of standardised features (dimensionless, 0 for identical volumes, about
        0 for independent samples of one texture, larger for different textures; small
        negative values are estimation noise).
    """
    pred_features, ref_features = paired_patch_features(
        pred_vol, ref_vol, planes=planes, n_patches=n_patches, n_slices=n_slices, seed=seed
    )
    pooled = np.concatenate([pred_features, ref_features])
    centre, spread = pooled.mean(axis=0), pooled.std(axis=0)
    spread = np.where(spread > 1e-12, spread, 1.0)
    return polynomial_mmd2_paired(
        (pred_features - centre) / spread, (ref_features - centre) / spread
    )


__all__ = [
    "N_FEATURES",
    "kid",
    "paired_patch_features",
    "polynomial_mmd2_paired",
    "slice_patch_features",
]
