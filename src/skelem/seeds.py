"""One way to derive random streams: :class:`numpy.random.SeedSequence` over explicit keys.

A stream is named by a tuple of non-negative integers, e.g. ``(seed, step, STREAM_ALIGNMENT)``,
instead of ad-hoc products such as ``seed * 7919 + step``: different keys never collide and a
resumed run draws the same numbers.
"""

from __future__ import annotations

import numpy as np
import torch


def derive_seed(*keys: int) -> int:
    """A 63-bit integer seed derived from ``keys`` (non-negative integers).

    Parameters
    ----------
    *keys : int
        The stream's name, e.g. ``(seed, step, STREAM_ALIGNMENT)``.

    Returns
    -------
    int
        A seed in ``[0, 2**63)``, the same for the same keys.
    """
    entropy = [int(k) for k in keys]
    if any(k < 0 for k in entropy):
        raise ValueError(f"seed keys must be non-negative, got {entropy}")
    lo, hi = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return (int(hi) << 31) ^ int(lo)


def numpy_rng(*keys: int) -> np.random.Generator:
    """A NumPy generator for the stream named by ``keys``.

    Parameters
    ----------
    *keys : int
        The stream's name (non-negative integers).

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))


def torch_generator(*keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator (on ``device``) for the stream named by ``keys``.

    Parameters
    ----------
    *keys : int
        The stream's name (non-negative integers).
    device : torch.device or str
        Device of the generator.

    Returns
    -------
    torch.Generator
        Seeded with :func:`derive_seed` of ``keys``.
    """
    return torch.Generator(device=device).manual_seed(derive_seed(*keys))
