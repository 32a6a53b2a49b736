"""Deterministic procedural volumes that look like EM and fluorescence (LM) data.

Both phantoms are isotropic ``(Z, Y, X)`` float32 images in ``[0, 1]`` with instance labels, made
from a seed only (same seed, same arrays). They are the test and demo data of SkelEM: degrade them
along Z with :func:`skelem.data.degradation.degrade` to get an anisotropic volume with a ground
truth.
A ``64 x 128 x 128`` phantom takes about a second on one CPU core.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from skelem.errors import InputError

Shape3 = tuple[int, int, int]


def _check_shape(shape: tuple[int, ...]) -> Shape3:
    dims = tuple(int(n) for n in shape)
    if len(dims) != 3 or min(dims) < 1:
        raise InputError(f"A phantom shape must be 3 positive sizes (Z, Y, X), got {shape!r}.")
    return dims  # type: ignore[return-value]


def smooth_noise(shape: Shape3, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance smooth noise with features of about ``scale`` voxels.

    White noise on a grid ``scale`` times coarser, smoothed and zoomed with cubic B-splines (no
    prefilter), so the cost is that of the output, whatever ``scale``.

    Parameters
    ----------
    shape : tuple of int
        Output shape ``(Z, Y, X)``.
    scale : float
        Feature size in voxels (at least 1).
    rng : numpy.random.Generator
        Source of the white noise.

    Returns
    -------
    numpy.ndarray
        float32 of ``shape``.
    """
    scale = max(1.0, float(scale))
    coarse_shape = tuple(math.ceil(n / scale) + 4 for n in shape)
    coarse = ndimage.gaussian_filter(rng.standard_normal(coarse_shape), 0.7)
    coords = [np.arange(n, dtype=np.float64) / scale + 2.0 for n in shape]
    field = _zoom_separable(coarse, coords).astype(np.float32)
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 0 else field


def _zoom_separable(coarse: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    """Cubic B-spline resampling of ``coarse`` at the outer product of ``coords`` (axis by axis)."""
    out = coarse
    for axis, pos in enumerate(coords):
        base = np.floor(pos).astype(int)
        t = pos - base
        weights = (
            (1 - t) ** 3 / 6,
            (3 * t**3 - 6 * t**2 + 4) / 6,
            (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6,
            t**3 / 6,
        )
        size = out.shape[axis]
        acc = None
        for shift, w in zip((-1, 0, 1, 2), weights, strict=True):
            idx = np.clip(base + shift, 0, size - 1)
            shape = [1] * out.ndim
            shape[axis] = -1
            term = np.take(out, idx, axis=axis) * w.reshape(shape)
            acc = term if acc is None else acc + term
        out = acc
    return out


def _local_box(
    center: np.ndarray, radius: float, shape: Shape3
) -> tuple[tuple[slice, ...], list[np.ndarray]] | None:
    """Slices of the voxels within ``radius`` of ``center`` (clipped to ``shape``), offsets."""
    lo = [max(0, math.floor(c - radius)) for c in center]
    hi = [min(n, math.ceil(c + radius) + 1) for c, n in zip(center, shape, strict=True)]
    if any(h <= low for low, h in zip(lo, hi, strict=True)):
        return None
    box = tuple(slice(low, h) for low, h in zip(lo, hi, strict=True))
    offsets = np.meshgrid(
        *[np.arange(low, h) - c for low, h, c in zip(lo, hi, center, strict=True)],
        indexing="ij",
        sparse=True,
    )
    return box, offsets


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def _voronoi(shape: Shape3, cell_size: float, warp: float, rng: np.random.Generator):
    """Nearest and second-nearest seed distances of every voxel, for seeds on a jittered grid."""
    pad = cell_size
    axes = [np.arange(-pad, n + pad, cell_size) for n in shape]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    seeds = grid + rng.uniform(-0.35, 0.35, grid.shape) * cell_size
    displacement = [smooth_noise(shape, cell_size / 2, rng) * (warp * cell_size) for _ in range(3)]
    points = np.stack(
        np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"), axis=-1
    )
    for axis in range(3):
        points[..., axis] += displacement[axis]
    dist, index = cKDTree(seeds).query(points.reshape(-1, 3), k=2)
    gap = (dist[:, 1] - dist[:, 0]).reshape(shape).astype(np.float32)
    return gap, index[:, 0].reshape(shape), len(seeds)


def em_phantom(
    shape: tuple[int, int, int] = (64, 128, 128),
    seed: int = 0,
    cell_size: float = 24.0,
    membrane_width: float = 1.5,
    noise: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """An EM-like volume: packed cells with dark membranes, mitochondria and vesicles.

    Cells are a Voronoi partition of seeds on a jittered grid (spacing ``cell_size`` voxels),
    warped by a smooth displacement so that walls curve. A voxel is membrane where the distances to
    its nearest and second-nearest seed differ by less than ``membrane_width`` (about that many
    voxels thick). Cytoplasm is mid-grey with low-frequency texture and a per-cell shade;
    mitochondria are elongated ellipsoids with a dark rim and striped cristae; vesicles are small
    spheres with a dark rim. Organelles stay inside their cell. The image is blurred
    (sigma 0.6 voxel), given Gaussian noise of standard deviation ``noise`` and clipped to [0, 1].

    Parameters
    ----------
    shape : tuple of int
        ``(Z, Y, X)`` in voxels.
    seed : int
        Random seed; the result depends only on the arguments.
    cell_size, membrane_width : float
        Mean cell spacing and membrane thickness, in voxels.
    noise : float
        Standard deviation of the additive Gaussian noise (image units).

    Returns
    -------
    image : numpy.ndarray
        float32 ``(Z, Y, X)`` in ``[0, 1]``.
    labels : numpy.ndarray
        uint32 ``(Z, Y, X)``: cell instances ``1..N`` (consecutive), membranes 0.
    """
    shape = _check_shape(shape)
    if not (cell_size > 2 and membrane_width > 0 and noise >= 0):
        raise InputError(
            "The EM phantom needs cell_size > 2, membrane_width > 0 and noise >= 0 (voxels)."
        )
    rng = np.random.default_rng(seed)
    gap, nearest, n_seeds = _voronoi(shape, float(cell_size), 0.12, rng)
    inside = gap >= membrane_width
    ids, inverse = np.unique(np.where(inside, nearest + 1, 0), return_inverse=True)
    labels = inverse.reshape(shape).astype(np.uint32)
    if ids[0] != 0:  # no membrane voxel at all: labels start at 1 already
        labels += 1

    shade = rng.normal(0.0, 0.035, n_seeds + 1).astype(np.float32)
    image = 0.6 + 0.05 * smooth_noise(shape, 10.0, rng) + 0.025 * smooth_noise(shape, 2.5, rng)
    image += shade[nearest + 1]
    membrane = np.clip(1.5 - gap / membrane_width, 0.0, 1.0)
    image = image * (1 - membrane) + 0.18 * membrane

    n_cells = max(1, int(labels.max()))
    flat_deep = np.flatnonzero(gap > 2 * membrane_width + 3)
    if flat_deep.size:
        for _ in range(max(1, round(0.8 * n_cells))):
            _mitochondrion(
                image, labels, np.unravel_index(rng.choice(flat_deep), shape), cell_size, rng
            )
        for _ in range(max(1, round(3.0 * n_cells))):
            _vesicle(image, labels, np.unravel_index(rng.choice(flat_deep), shape), rng)

    image = ndimage.gaussian_filter(image, 0.6)
    if noise > 0:
        image += rng.normal(0.0, noise, shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32), labels


def _mitochondrion(
    image: np.ndarray, labels: np.ndarray, center: tuple, cell_size: float, rng: np.random.Generator
) -> None:
    center_arr = np.asarray(center, dtype=np.float64) + rng.uniform(-0.5, 0.5, 3)
    long_axis = rng.uniform(0.25, 0.45) * cell_size
    short_axis = rng.uniform(0.12, 0.17) * cell_size
    found = _local_box(center_arr, long_axis + 1.5, image.shape)  # type: ignore[arg-type]
    if found is None:
        return
    box, (dz, dy, dx) = found
    u = _random_unit(rng)
    along = dz * u[0] + dy * u[1] + dx * u[2]
    across2 = np.maximum(dz**2 + dy**2 + dx**2 - along**2, 0.0)
    radius = np.sqrt((along / long_axis) ** 2 + across2 / short_axis**2)
    mask = (radius < 1.0) & (labels[box] == labels[tuple(int(c) for c in center)])
    period = rng.uniform(2.5, 4.0)
    cristae = 0.4 + 0.14 * np.cos(2 * np.pi * along / period + rng.uniform(0, 2 * np.pi))
    values = np.where(radius > 0.75, 0.2, cristae).astype(np.float32)
    image[box][mask] = values[mask]


def _vesicle(
    image: np.ndarray, labels: np.ndarray, center: tuple, rng: np.random.Generator
) -> None:
    center_arr = np.asarray(center, dtype=np.float64) + rng.uniform(-0.5, 0.5, 3)
    radius = rng.uniform(1.3, 2.6)
    found = _local_box(center_arr, radius + 1.0, image.shape)  # type: ignore[arg-type]
    if found is None:
        return
    box, (dz, dy, dx) = found
    dist = np.sqrt(dz**2 + dy**2 + dx**2)
    mask = (dist < radius + 0.5) & (labels[box] == labels[tuple(int(c) for c in center)])
    values = np.where(dist > radius - 0.7, 0.25, 0.68).astype(np.float32)
    image[box][mask] = values[mask]


def lm_phantom(
    shape: tuple[int, int, int] = (64, 128, 128),
    seed: int = 0,
    n_nuclei: int | None = None,
    psf_sigma: tuple[float, float, float] = (2.0, 0.8, 0.8),
    photons: float = 200.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A fluorescence-like volume: textured nuclei and small puncta, PSF blur and shot noise.

    Nuclei are non-overlapping ellipsoids with random orientation and brightness and a chromatin
    texture; small bright puncta (unlabelled) sit in the background. The image is blurred by an
    anisotropic Gaussian PSF, photon (Poisson) noise is drawn at ``photons`` counts for intensity 1,
    and the result is divided by its maximum.

    Parameters
    ----------
    shape : tuple of int
        ``(Z, Y, X)`` in voxels.
    seed : int
        Random seed; the result depends only on the arguments.
    n_nuclei : int, optional
        Number of nuclei to place (default: about 20% of the volume filled).
    psf_sigma : tuple of float
        PSF standard deviation along ``(Z, Y, X)`` in voxels.
    photons : float
        Expected photon count at intensity 1 (lower is noisier).

    Returns
    -------
    image : numpy.ndarray
        float32 ``(Z, Y, X)`` in ``[0, 1]``.
    labels : numpy.ndarray
        uint32 ``(Z, Y, X)``: nucleus instances ``1..N``, background (and puncta) 0.
    """
    shape = _check_shape(shape)
    if not photons > 0:
        raise InputError(f"The LM phantom needs a positive photon count, got {photons}.")
    rng = np.random.default_rng(seed)
    size = float(np.clip(min(shape) / 5.0, 3.0, 12.0))
    if n_nuclei is None:
        n_nuclei = max(1, round(0.2 * math.prod(shape) / (4.0 / 3.0 * math.pi * size**3)))
    image = 0.03 + 0.01 * smooth_noise(shape, 16.0, rng)
    chromatin = smooth_noise(shape, 1.5, rng)
    labels = np.zeros(shape, dtype=np.uint32)
    placed = 0
    for _ in range(30 * int(n_nuclei)):
        if placed >= n_nuclei:
            break
        center = rng.uniform(0, 1, 3) * np.asarray(shape)
        axes = size * rng.uniform(0.7, 1.1) * rng.uniform(0.8, 1.2, 3)
        rotation = np.linalg.qr(rng.standard_normal((3, 3)))[0]
        found = _local_box(center, float(axes.max()) + 1.5, shape)
        if found is None:
            continue
        box, offsets = found
        local = [sum(rotation[i, j] * offsets[j] for j in range(3)) / axes[i] for i in range(3)]
        radius = np.sqrt(local[0] ** 2 + local[1] ** 2 + local[2] ** 2)
        mask = radius < 1.0
        if not mask.any() or (labels[box][mask] != 0).any():
            continue
        placed += 1
        edge = np.clip((1.0 - radius) * axes.min(), 0.0, 1.0)
        brightness = rng.uniform(0.45, 1.0)
        value = brightness * (0.75 + 0.15 * chromatin[box]) * edge
        image[box] = np.maximum(image[box], value)
        labels[box][mask] = placed
    for _ in range(3 * int(n_nuclei)):
        center = rng.uniform(0, 1, 3) * np.asarray(shape)
        radius_p = rng.uniform(0.8, 1.6)
        found = _local_box(center, radius_p + 1.0, shape)
        if found is None:
            continue
        box, (dz, dy, dx) = found
        blob = rng.uniform(0.3, 0.8) * np.exp(-0.5 * (dz**2 + dy**2 + dx**2) / radius_p**2)
        image[box] = np.maximum(image[box], blob.astype(np.float32))
    image = ndimage.gaussian_filter(np.clip(image, 0.0, None), psf_sigma)
    counts = rng.poisson(image.astype(np.float64) * float(photons)).astype(np.float32)
    peak = float(counts.max())
    image = counts / peak if peak > 0 else counts
    return image.astype(np.float32), labels
