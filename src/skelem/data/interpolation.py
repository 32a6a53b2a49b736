"""Interpolation along one axis onto the fine output grid (``I_s`` in the method).

``n`` acquired samples become ``s * (n - 1) + 1`` samples; acquired sample ``k`` lands on output
row ``k * s`` ("measured rows") and is copied exactly. Output row ``k * s + p`` (phase
``0 < p < s``, ``t = p / s``) is a fixed combination of the input samples around it:

- ``nearest``: sample ``k`` if ``t <= 1/2`` else ``k + 1`` (a tie, possible for an even factor,
  goes to the lower sample ``k``).
- ``linear``: ``(1 - t) x[k] + t x[k + 1]``.
- ``cubic``: Keys cubic convolution with ``a = -0.5`` over ``x[k - 1] .. x[k + 2]``; the edges
  replicate the first and last sample. It reproduces polynomials up to degree 2 away from the edges.

Every method is local (at most 1 sample before and 2 after), so a block upsampled with a 2-sample
halo and cropped equals the same rows of the untiled result exactly. The work is 4 weighted,
shifted slabs per phase, vectorised over all other axes; the only full-size allocation is the
output. The output-grid rules themselves live in :mod:`skelem.grid`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from skelem.config.models import check_factor
from skelem.errors import ConfigError, InputError
from skelem.grid import measured_rows as measured_rows_mask
from skelem.grid import restored_length

if TYPE_CHECKING:  # pragma: no cover
    import torch

METHODS = ("nearest", "linear", "cubic")
KEYS_A = -0.5
#: input samples needed on each side of a block for :func:`upsample` to be exact after cropping
HALO = 2


def output_length(n_in: int, factor: int) -> int:
    """Number of output samples for ``n_in`` acquired samples (:func:`skelem.grid.restored_length`).

    Parameters
    ----------
    n_in : int
        Acquired samples.
    factor : int
        Anisotropy factor ``s``.

    Returns
    -------
    int
        ``factor * (n_in - 1) + 1``.
    """
    return restored_length(n_in, factor)


def measured_rows(n_out: int, factor: int) -> np.ndarray:
    """Output rows ``0, factor, 2 * factor, ...`` (below ``n_out``) that hold acquired samples.

    Parameters
    ----------
    n_out : int
        Output rows.
    factor : int
        Anisotropy factor ``s``.

    Returns
    -------
    numpy.ndarray of int
        The indices where :func:`skelem.grid.measured_rows` is true.
    """
    return np.flatnonzero(measured_rows_mask(int(n_out), int(factor)))


def _keys(d: np.ndarray, a: float = KEYS_A) -> np.ndarray:
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def phase_weights(factor: int, method: str = "cubic") -> np.ndarray:
    """Weights ``(factor, 4)`` (float64) of inputs ``k - 1, k, k + 1, k + 2`` for each output phase.

    Row ``p`` gives output row ``k * factor + p``; row 0 is ``[0, 1, 0, 0]`` (a measured row).

    Parameters
    ----------
    factor : int
        Anisotropy factor ``s``.
    method : {'nearest', 'linear', 'cubic'}
        See the module docstring.

    Returns
    -------
    numpy.ndarray
        ``(factor, 4)`` float64.
    """
    factor = check_factor(factor)
    t = np.arange(factor, dtype=np.float64) / factor
    weights = np.zeros((factor, 4))
    if method == "nearest":
        upper = t > 0.5
        weights[:, 1] = ~upper
        weights[:, 2] = upper
    elif method == "linear":
        weights[:, 1] = 1 - t
        weights[:, 2] = t
    elif method == "cubic":
        for j, shift in enumerate((-1, 0, 1, 2)):
            weights[:, j] = _keys(t - shift)
    else:
        raise ConfigError(
            f"Unknown interpolation method {method!r}; use one of {', '.join(METHODS)}."
        )
    return weights


def _prepare(n_in: int, factor: int, method: str) -> tuple[int, np.ndarray]:
    if n_in < 1:
        raise InputError("Cannot interpolate an empty axis.")
    factor = check_factor(factor)
    return factor, phase_weights(factor, method).astype(np.float32)


def upsample(array: np.ndarray, factor: int, axis: int = 0, method: str = "cubic") -> np.ndarray:
    """Interpolate ``array`` along ``axis`` onto the fine grid.

    Parameters
    ----------
    array : numpy.ndarray
        Any number of dimensions, e.g. an acquired volume ``(Z, Y, X)``.
    factor : int
        Anisotropy factor ``s`` (integer 2-16).
    axis : int
        Axis to interpolate (default 0, Z).
    method : {'nearest', 'linear', 'cubic'}
        See the module docstring.

    Returns
    -------
    numpy.ndarray
        float32, ``s * (n - 1) + 1`` samples along ``axis``; ``out[k * s] == float32(array[k])``.
    """
    x = np.asarray(array, dtype=np.float32)
    if x.ndim == 0:
        raise InputError("Cannot interpolate a scalar; pass an array with at least one axis.")
    if not -x.ndim <= axis < x.ndim:
        raise InputError(f"Axis {axis} does not exist in an array with {x.ndim} dimensions.")
    n = x.shape[axis]
    factor, weights = _prepare(n, factor, method)
    shape = list(x.shape)
    shape[axis] = output_length(n, factor)
    out = np.empty(shape, dtype=np.float32)
    src = np.moveaxis(x, axis, 0)
    dst = np.moveaxis(out, axis, 0)
    dst[::factor] = src
    if n == 1:
        return out
    last = n - 1
    slabs = (
        np.take(
            src, np.clip(np.arange(-1, last - 1), 0, last), axis=0
        ),  # x[k - 1], edge replicated
        src[:-1],  # x[k]
        src[1:],  # x[k + 1]
        np.take(src, np.clip(np.arange(2, n + 1), 0, last), axis=0),  # x[k + 2], edge replicated
    )
    for phase in range(1, factor):
        rows = dst[phase : last * factor : factor]
        first = True
        for weight, slab in zip(weights[phase], slabs, strict=True):
            if weight == 0:
                continue
            if first:
                np.multiply(slab, weight, out=rows)
                first = False
            else:
                rows += slab * weight
    return out


def upsample_torch(
    x: torch.Tensor, factor: int, dim: int = -2, method: str = "cubic"
) -> torch.Tensor:
    """:func:`upsample` for tensors (e.g. ``(B, C, H, W)`` along ``H``), differentiable.

    Same values as :func:`upsample`, computed in ``x``'s floating dtype (float32 for integer
    input) on ``x``'s device.

    Parameters
    ----------
    x : torch.Tensor
        Any number of dimensions.
    factor : int
        Anisotropy factor ``s``.
    dim : int
        Dimension to interpolate (default -2, ``H``).
    method : {'nearest', 'linear', 'cubic'}
        See the module docstring.

    Returns
    -------
    torch.Tensor
        ``s * (n - 1) + 1`` samples along ``dim``.
    """
    import torch

    if x.ndim == 0:
        raise InputError("Cannot interpolate a scalar; pass a tensor with at least one dimension.")
    if not -x.ndim <= dim < x.ndim:
        raise InputError(f"Dimension {dim} does not exist in a tensor with {x.ndim} dimensions.")
    if not torch.is_floating_point(x):
        x = x.to(torch.float32)
    n = int(x.shape[dim])
    factor, weights = _prepare(n, factor, method)
    src = x.movedim(dim, 0)
    if n == 1:
        return x.clone()
    last = n - 1
    index = torch.as_tensor
    slabs = (
        torch.index_select(
            src, 0, index(np.clip(np.arange(-1, last - 1), 0, last), device=x.device)
        ),
        src[:-1],
        src[1:],
        torch.index_select(src, 0, index(np.clip(np.arange(2, n + 1), 0, last), device=x.device)),
    )
    phases = [src[:-1]]
    for phase in range(1, factor):
        rows: torch.Tensor | None = None
        for weight, slab in zip(weights[phase], slabs, strict=True):
            if weight == 0:
                continue
            term = slab * torch.tensor(float(weight), dtype=x.dtype, device=x.device)
            rows = term if rows is None else rows + term
        assert rows is not None
        phases.append(rows)
    # interleave phases: (n - 1, factor, ...) -> ((n - 1) * factor, ...), then the last sample
    body = torch.stack(phases, dim=1).reshape((last * factor, *src.shape[1:]))
    return torch.cat([body, src[-1:]], dim=0).movedim(0, dim)
