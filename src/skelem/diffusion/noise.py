"""Gaussian noise seeded by global pixel coordinates, so overlapping tiles draw identical noise.

The value at a pixel is a pure function of ``(seed, key, global row, global column)``: a
counter-based hash (the splitmix64 finaliser chained over the inputs, applied twice per pixel,
vectorised in numpy ``uint64``)
gives 64 random bits per pixel, split into two 32-bit uniforms and turned into one standard
normal with the Box-Muller transform. No generator state is involved, so the order in which
tiles are processed, their size and their overlap never change the noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
_TWO_PI = 2.0 * np.pi


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = z + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _as_u64(values: Sequence[int] | np.ndarray | int) -> np.ndarray:
    return np.atleast_1d(np.asarray(values, dtype=np.int64)).view(np.uint64)


def _stream(seed: int, key: Sequence[int]) -> np.ndarray:
    state = _mix(_as_u64(seed))
    for part in key:
        state = _mix(state ^ _as_u64(part))
    return state


def coordinate_noise_numpy(
    shape: tuple[int, int], origin: tuple[int, int], key: Sequence[int], seed: int
) -> np.ndarray:
    """Standard normal float64 ``(H, W)`` noise; see :func:`coordinate_noise`.

    Parameters
    ----------
    shape, origin : (int, int)
        ``(H, W)`` of the window and the global ``(row, column)`` of its top-left pixel.
    key : sequence of int
        Identifies the slice.
    seed : int
        User seed.

    Returns
    -------
    numpy.ndarray
        float64 ``(H, W)``.
    """
    height, width = (int(n) for n in shape)
    row0, col0 = (int(n) for n in origin)
    state = _stream(seed, tuple(int(k) for k in key))
    rows = _mix(state ^ _as_u64(np.arange(row0, row0 + height, dtype=np.int64)))
    cols = _as_u64(np.arange(col0, col0 + width, dtype=np.int64))
    return _normal_from_bits(_mix(_mix(rows[:, None] ^ cols[None, :])))


def coordinate_noise(
    shape: tuple[int, int],
    origin: tuple[int, int],
    key: Sequence[int],
    seed: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Gaussian noise whose value at a pixel depends only on (seed, key, global coordinates).

    Parameters
    ----------
    shape : (int, int)
        ``(H, W)`` of the window.
    origin : (int, int)
        Global ``(row, column)`` of the window's top-left pixel in the full slice.
    key : sequence of int
        Identifies the slice (e.g. ``(plane, slice index, sample)``); distinct keys give
        independent noise.
    seed : int
        User seed.

    Returns
    -------
    Tensor
        ``(H, W)`` standard normal noise; two windows agree exactly where they overlap.
    """
    noise = coordinate_noise_numpy(shape, origin, key, seed)
    return torch.from_numpy(noise).to(device=device, dtype=dtype)


def coordinate_noise_batch(
    shape: tuple[int, int],
    origins: Sequence[tuple[int, int]],
    keys: Sequence[Sequence[int]],
    seed: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """A ``(B, 1, H, W)`` batch of :func:`coordinate_noise` windows, one per (origin, key).

    Parameters
    ----------
    shape : (int, int)
        ``(H, W)`` of every window.
    origins : sequence of (int, int)
        Global top-left ``(row, column)`` of each window.
    keys : sequence of sequence of int
        The key of each window's slice (as many as ``origins``).
    seed : int
        User seed.
    dtype, device
        Of the result.

    Returns
    -------
    Tensor
        ``(B, 1, H, W)`` standard normal noise.
    """
    if len(origins) != len(keys):
        raise ValueError(f"got {len(origins)} origins but {len(keys)} keys")
    stacked = np.stack(
        [coordinate_noise_numpy(shape, o, k, seed) for o, k in zip(origins, keys, strict=True)]
    )
    return torch.from_numpy(stacked[:, None]).to(device=device, dtype=dtype)


def _normal_from_bits(bits: np.ndarray) -> np.ndarray:
    """One standard normal per uint64 (two 32-bit uniforms, Box-Muller)."""
    u1 = ((bits >> _S32).astype(np.float64) + 1.0) * (1.0 / 4294967296.0)  # (0, 1]
    u2 = (bits & np.uint64(0xFFFFFFFF)).astype(np.float64) * (1.0 / 4294967296.0)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)


def voxel_noise_numpy(
    plane: str, slice_index: int, shape: tuple[int, int], origin: tuple[int, int], seed: int
) -> np.ndarray:
    """Standard normal float64 ``(H, W)`` noise of one cross-plane slice, keyed by its voxels.

    The value at voxel ``(z, y, x)`` depends only on ``(seed, z, y, x)``: the XZ slice at ``y``
    and the YZ slice at ``x`` draw the same value where they cross, so the two passes of a
    restoration start from one noise volume (their detail agrees instead of averaging out).

    Parameters
    ----------
    plane : {"xz", "yz"}
        Rows are Z; columns are X (``xz``, the slice at ``y = slice_index``) or Y (``yz``, the
        slice at ``x = slice_index``).
    slice_index : int
        Global Y (XZ slice) or X (YZ slice) of the slice.
    shape : (int, int)
        ``(H, W)`` of the window.
    origin : (int, int)
        Global ``(z, column)`` of the window's top-left voxel.
    seed : int
        User seed.

    Returns
    -------
    numpy.ndarray
        float64 ``(H, W)``.
    """
    if plane not in ("xz", "yz"):
        raise ValueError(f"plane must be 'xz' or 'yz', got {plane!r}")
    height, width = (int(n) for n in shape)
    row0, col0 = (int(n) for n in origin)
    z_state = _mix(_stream(seed, (3,)) ^ _as_u64(np.arange(row0, row0 + height, dtype=np.int64)))
    cols = _as_u64(np.arange(col0, col0 + width, dtype=np.int64))
    index = _as_u64(int(slice_index))
    if plane == "xz":  # (z, y = index, x = cols)
        zy = _mix(z_state ^ index)[:, None]
        bits = _mix(_mix(zy ^ cols[None, :]))
    else:  # (z, y = cols, x = index)
        zy = _mix(z_state[:, None] ^ cols[None, :])
        bits = _mix(_mix(zy ^ index))
    return _normal_from_bits(bits)


def voxel_noise_batch(
    plane: str,
    slice_indices: Sequence[int],
    shape: tuple[int, int],
    origin: tuple[int, int],
    seed: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """A ``(B, 1, H, W)`` batch of :func:`voxel_noise_numpy` windows, one per slice index.

    Parameters
    ----------
    plane : {"xz", "yz"}
        The cross-plane of every slice.
    slice_indices : sequence of int
        Global Y (XZ) or X (YZ) of each slice.
    shape, origin : (int, int)
        ``(H, W)`` and global ``(z, column)`` of every window.
    seed : int
        User seed.
    dtype, device
        Of the result.

    Returns
    -------
    Tensor
        ``(B, 1, H, W)`` standard normal noise, equal where XZ and YZ slices cross.
    """
    stacked = np.stack(
        [voxel_noise_numpy(plane, int(i), shape, origin, seed) for i in slice_indices]
    )
    return torch.from_numpy(stacked[:, None]).to(device=device, dtype=dtype)
