"""The axial degradation model ``D_s``: slice profile along one axis, then every ``s``-th sample.

A volume acquired with an axial step of ``s`` lateral pixels is modelled as the isotropic volume
convolved along Z with a *slice profile* ``h`` and sampled at rows ``offset, offset + s, ...``.
Profiles (lengths in voxels of the fine grid):

- ``none``: pure subsampling (``h`` is a delta).
- ``box``: a physical section of thickness ``thickness`` (default ``s``), centred on the sample.
  Every tap weighs the overlap of its voxel ``[i - 1/2, i + 1/2]`` with ``[-T/2, T/2]``, so an
  even or non-integer thickness gives fractional edge weights and the kernel stays symmetric
  (e.g. ``T = 4`` gives ``[1, 2, 2, 2, 1] / 8``).
- ``gaussian``: a light-microscopy PSF with standard deviation ``sigma``, truncated at 4 sigma.

Edges are handled by replicating the first and last sample (``mode='nearest'`` in
:mod:`scipy.ndimage` terms). Only the kept samples are computed, so the cost is that of the output.
:func:`degrade` (numpy) and :func:`degrade_torch` (differentiable, batched) give the same values.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from skelem.config.models import check_factor
from skelem.errors import ConfigError, InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from skelem.config.models import DegradationConfig

PROFILES = ("none", "box", "gaussian")


def slice_profile_kernel(
    profile: str, factor: int, thickness: float | None = None, sigma: float | None = None
) -> np.ndarray | None:
    """The normalised, symmetric 1-D slice-profile kernel (float64), or ``None`` for ``none``.

    Parameters
    ----------
    profile : {'none', 'box', 'gaussian'}
        Slice profile.
    factor : int
        Anisotropy factor ``s`` (integer 2-16); the default box thickness.
    thickness : float, optional
        Box section thickness in voxels (default ``factor``).
    sigma : float, optional
        Gaussian standard deviation in voxels (required for ``gaussian``).

    Returns
    -------
    numpy.ndarray or None
        Odd-length kernel ``(2 r + 1,)`` centred on tap ``r``, summing to 1.
    """
    factor = check_factor(factor)
    if profile == "none":
        return None
    if profile == "box":
        width = float(factor if thickness is None else thickness)
        if not (math.isfinite(width) and width > 0):
            raise ConfigError(
                f"The box slice thickness must be a positive number of voxels, got {thickness!r}."
            )
        half = width / 2.0
        radius = max(0, math.ceil(half - 0.5 - 1e-9))
        taps = np.arange(-radius, radius + 1, dtype=np.float64)
        weights = np.clip(np.minimum(taps + 0.5, half) - np.maximum(taps - 0.5, -half), 0.0, None)
        return weights / weights.sum()
    if profile == "gaussian":
        if sigma is None or not (math.isfinite(float(sigma)) and float(sigma) > 0):
            raise ConfigError(
                f"The gaussian slice profile needs a positive sigma in voxels, got {sigma!r}."
            )
        radius = max(1, math.ceil(4.0 * float(sigma)))
        taps = np.arange(-radius, radius + 1, dtype=np.float64)
        weights = np.exp(-0.5 * (taps / float(sigma)) ** 2)
        return weights / weights.sum()
    raise ConfigError(f"Unknown slice profile {profile!r}; use one of {', '.join(PROFILES)}.")


def kept_indices(length: int, factor: int, offset: int = 0) -> np.ndarray:
    """Indices ``offset, offset + factor, ...`` kept by :func:`degrade` along an axis.

    Parameters
    ----------
    length : int
        Samples along the axis.
    factor : int
        Anisotropy factor ``s``.
    offset : int
        First kept sample.

    Returns
    -------
    numpy.ndarray of int
    """
    return np.arange(offset, length, factor)


def _check(length: int, factor: int, offset: int, where: str) -> tuple[int, np.ndarray]:
    factor = check_factor(factor)
    if not 0 <= int(offset) < factor:
        raise ConfigError(
            f"The degradation offset {offset} must be in 0..{factor - 1} for factor {factor}."
        )
    kept = kept_indices(length, factor, int(offset))
    if kept.size < 2:
        raise InputError(
            f"The {where} has {length} samples, too few to degrade by {factor} "
            f"(at least {int(offset) + factor + 1} are needed for 2 output samples)."
        )
    return factor, kept


def degrade(
    array: np.ndarray,
    factor: int,
    axis: int = 0,
    profile: str = "none",
    thickness: float | None = None,
    sigma: float | None = None,
    offset: int = 0,
) -> np.ndarray:
    """Apply ``D_s`` along ``axis``: convolve with the slice profile, keep every s-th sample.

    Parameters
    ----------
    array : numpy.ndarray
        Any number of dimensions, e.g. a volume ``(Z, Y, X)`` or a slice ``(H, W)``.
    factor : int
        Anisotropy factor ``s`` (integer 2-16; validated by ``check_factor``).
    axis : int
        Axis to degrade (default 0, Z).
    profile, thickness, sigma
        Slice profile, see :func:`slice_profile_kernel` (lengths in voxels).
    offset : int
        First kept sample, ``0 <= offset < factor``.

    Returns
    -------
    numpy.ndarray
        ``len(range(offset, n, factor))`` samples along ``axis``. With ``profile='none'`` this is
        exactly ``array[offset::factor]`` (same dtype, a copy); otherwise floating point
        (float32 unless the input is float64). Edges replicate the first/last sample.

    Raises
    ------
    ConfigError
        For a bad factor, offset or profile.
    InputError
        When fewer than 2 samples would be kept.
    """
    array = np.asarray(array)
    if array.ndim == 0:
        raise InputError("Cannot degrade a scalar; pass an array with at least one axis.")
    axis = _normalise_axis(axis, array.ndim)
    length = array.shape[axis]
    factor, kept = _check(length, factor, offset, f"axis {axis} of the array")
    kernel = slice_profile_kernel(profile, factor, thickness, sigma)
    if kernel is None:
        return np.take(array, kept, axis=axis)
    dtype = np.float64 if array.dtype == np.float64 else np.float32
    weights = kernel.astype(dtype)
    radius = kernel.size // 2
    out: np.ndarray | None = None
    for tap, weight in enumerate(weights):
        rows = np.clip(kept + tap - radius, 0, length - 1)
        term = np.take(array, rows, axis=axis).astype(dtype, copy=False) * weight
        out = term if out is None else np.add(out, term, out=out)
    assert out is not None
    return out


def degrade_with(array: np.ndarray, cfg: DegradationConfig, axis: int = 0) -> np.ndarray:
    """:func:`degrade` with the factor, profile and offset of a :class:`DegradationConfig`.

    Parameters
    ----------
    array : numpy.ndarray
        The isotropic array, e.g. ``(Z, Y, X)``.
    cfg : DegradationConfig
        Factor, slice profile (thickness, sigma) and offset.
    axis : int
        Axis to degrade (default 0, Z).

    Returns
    -------
    numpy.ndarray
        As :func:`degrade`.
    """
    return degrade(
        array,
        cfg.factor,
        axis=axis,
        profile=cfg.profile,
        thickness=cfg.thickness,
        sigma=cfg.sigma,
        offset=cfg.offset,
    )


def degrade_torch(
    x: torch.Tensor,
    factor: int,
    dim: int = -2,
    profile: str = "none",
    thickness: float | None = None,
    sigma: float | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """Differentiable :func:`degrade` for tensors, e.g. batches ``(B, C, H, W)`` along ``H``.

    Same kernel, edge handling (replicate) and summation order as the numpy version, so both give
    the same values on the same data. The result keeps ``x``'s dtype and device.

    Parameters
    ----------
    x : torch.Tensor
        The tensor to degrade.
    factor : int
        Anisotropy factor ``s``.
    dim : int
        Dimension to degrade (default -2, ``H``).
    profile, thickness, sigma
        Slice profile, as :func:`degrade`.
    offset : int
        First kept sample.

    Returns
    -------
    torch.Tensor
        The kept samples along ``dim``.
    """
    import torch

    if x.ndim == 0:
        raise InputError("Cannot degrade a scalar; pass a tensor with at least one dimension.")
    dim = _normalise_axis(dim, x.ndim)
    length = int(x.shape[dim])
    factor, kept = _check(length, factor, offset, f"dimension {dim} of the tensor")
    kernel = slice_profile_kernel(profile, factor, thickness, sigma)
    if kernel is None:
        return torch.index_select(x, dim, torch.as_tensor(kept, device=x.device))
    radius = kernel.size // 2
    out: torch.Tensor | None = None
    for tap, weight in enumerate(kernel):
        rows = torch.as_tensor(np.clip(kept + tap - radius, 0, length - 1), device=x.device)
        w = torch.tensor(weight, dtype=x.dtype, device=x.device)
        term = torch.index_select(x, dim, rows) * w
        out = term if out is None else out + term
    assert out is not None
    return out


def _normalise_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise InputError(f"Axis {axis} does not exist in an array with {ndim} dimensions.")
    return axis % ndim
