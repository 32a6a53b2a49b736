"""Self-supervised training pairs ``(U, P)`` from the lateral (XY) slices of an anisotropic volume.

For every item a window of one XY slice is read, one lateral axis is chosen to play Z (it becomes
the rows, ``H``), rows and columns are flipped at random, the window is degraded along the rows with
:func:`~skelem.data.degradation.degrade` and brought back with cubic
:func:`~skelem.data.interpolation.upsample`. ``U`` (degraded-interpolated) and the target ``P`` are
the same ``patch_size x patch_size`` crop of that window, both normalised.

Geometry along the rows of one window (``s`` = factor, ``r`` = slice-profile radius)::

    read:      r rows | region of L = s * m + 1 rows, first and last are measured | r rows
    crop:      rows a .. a + patch_size - 1 of the region, a = s + phase, 0 <= phase < s

The ``r`` extra rows give the slice profile real data at the measured rows; ``a >= s`` and
``L`` leave each crop row its 4 cubic taps inside the region. Row ``i`` of the patch is a measured
row when ``(a + i) % s == 0``. The phase is drawn once per batch, so all items of a batch share the
measured-row mask (one ``(H,)`` mask serves the whole batch in later code).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from skelem.config.models import check_factor
from skelem.data.degradation import degrade, slice_profile_kernel
from skelem.data.interpolation import upsample
from skelem.data.normalize import PercentileNormalizer, as_lazy_array
from skelem.errors import ConfigError, InputError
from skelem.grid import measured_rows, neighbour_offsets

log = logging.getLogger(__name__)

#: candidate windows drawn per item at most when ``foreground_bias`` is on
MAX_CANDIDATES = 4
#: windows used to estimate the typical patch standard deviation
REFERENCE_WINDOWS = 32


def pair_window(
    factor: int,
    patch_size: int,
    profile: str = "none",
    thickness: float | None = None,
    sigma: float | None = None,
) -> tuple[int, int, int]:
    """Geometry of one training window: ``(kernel radius, intervals m, window rows)``.

    The degraded region has ``factor * m + 1`` rows so the cubic interpolation has real context
    for every patch row whatever the phase; the slice profile adds its radius on both sides.

    Parameters
    ----------
    factor : int
        Anisotropy factor ``s``.
    patch_size : int
        Side of the training patch.
    profile, thickness, sigma
        Slice profile (see :func:`skelem.data.degradation.slice_profile_kernel`).

    Returns
    -------
    tuple of int
        ``(kernel radius, intervals m, window rows)``.
    """
    kernel = slice_profile_kernel(profile, factor, thickness, sigma)
    radius = 0 if kernel is None else kernel.size // 2
    # crop start a = s + phase <= 2s - 1; the last crop row needs taps up to its interval + 2
    intervals = (2 * factor - 1 + patch_size - 1) // factor + 2
    return radius, intervals, factor * intervals + 1 + 2 * radius


def pair_orientations(
    shape: tuple[int, ...],
    factor: int,
    patch_size: int,
    profile: str = "none",
    thickness: float | None = None,
    sigma: float | None = None,
    stage: str = "training",
) -> list[int]:
    """Lateral axes (1 = Y, 2 = X) that can play Z in a training window.

    Parameters
    ----------
    shape : tuple of int
        Volume shape ``(Z, Y, X)``.
    factor : int
        Anisotropy factor ``s``.
    patch_size : int
        Side of the patch.
    profile, thickness, sigma
        Slice profile, as :func:`pair_window`.
    stage : str
        Named in the error message.

    Returns
    -------
    list of int

    Raises
    ------
    InputError
        When no lateral axis is long enough.
    """
    window_rows = pair_window(factor, patch_size, profile, thickness, sigma)[2]
    ny, nx = shape[-2:]
    axes = [
        axis
        for axis, (rows, cols) in ((1, (ny, nx)), (2, (nx, ny)))
        if rows >= window_rows and cols >= patch_size
    ]
    if not axes:
        raise InputError(
            f"The volume's lateral size ({ny}x{nx}) is smaller than the {stage} patch "
            f"({patch_size}) "
            f"with its interpolation context ({window_rows}x{patch_size} at factor {factor}); "
            "use a smaller --patch-size."
        )
    return axes


class PairSampler:
    """Draw batches of ``(U, P)`` pairs from lateral slices of a (lazy) volume.

    Parameters
    ----------
    volume_array : array-like
        ``(Z, Y, X)`` (or one ``(Y, X)`` slice): numpy, zarr, h5py, ``AxisView`` or a ``Volume``.
        Only the windows needed are read.
    factor : int
        Anisotropy factor ``s`` (integer 2-16).
    profile, thickness, sigma
        Slice profile of the simulated degradation (see :mod:`skelem.data.degradation`).
    patch_size : int
        Side ``P`` of the square patches, in voxels.
    normalizer : PercentileNormalizer, optional
        Intensity normalisation (fitted on the volume when omitted).
    seed : int
        Seeds the sampler's own generator (used when :meth:`sample` gets no ``rng``).
    foreground_bias : bool
        Prefer structured windows: a candidate is accepted with probability
        ``min(1, std / reference_std)``, where ``std`` is the standard deviation of its normalised
        target patch and ``reference_std`` the median over :data:`REFERENCE_WINDOWS` random windows
        drawn at construction (from ``seed``). After :data:`MAX_CANDIDATES` rejections the candidate
        with the largest std is kept. Deterministic given the generator.
    axes : tuple of int, optional
        Only these orientations (1: rows along Y, 2: rows along X of the array).
    context : int
        Neighbouring slices of the array (along its axis 0) on each side, given with every pair
        as extra channels of ``U`` (:mod:`skelem.models.context`; the order of the two sides is
        swapped at random). Only for arrays whose axis 0 is one voxel apart, as a lateral axis
        is: the transposed stacks of :func:`axial_pair_samplers`.

    Raises
    ------
    InputError
        If no orientation of the XY plane fits the window needed for ``patch_size``.
    """

    def __init__(
        self,
        volume_array: Any,
        factor: int,
        profile: str = "none",
        thickness: float | None = None,
        sigma: float | None = None,
        patch_size: int = 64,
        normalizer: PercentileNormalizer | None = None,
        seed: int = 0,
        foreground_bias: bool = True,
        axes: tuple[int, ...] | None = None,
        context: int = 0,
    ) -> None:
        self.array = as_lazy_array(volume_array)
        self.context = int(context)
        shape = tuple(int(n) for n in self.array.shape)
        if len(shape) not in (2, 3):
            raise InputError(
                f"Training pairs need a (Z, Y, X) volume or a (Y, X) slice, got shape {shape}."
            )
        self.planar = len(shape) == 2
        self.shape = (1, *shape) if self.planar else shape
        if self.context and (self.planar or self.shape[0] < 2 * self.context + 1):
            raise InputError(
                f"Pairs with {self.context} neighbouring slices on each side need at least "
                f"{2 * self.context + 1} slices, got shape {shape}."
            )
        self.factor = check_factor(factor)
        self.patch_size = int(patch_size)
        if self.patch_size < 2:
            raise ConfigError(
                f"The training patch size must be at least 2 voxels, got {patch_size}."
            )
        self.profile, self.thickness, self.sigma = profile, thickness, sigma
        self.radius, self.region_intervals, self.window_rows = pair_window(
            self.factor, self.patch_size, profile, thickness, sigma
        )
        self.region_rows = self.factor * self.region_intervals + 1
        self.orientations = pair_orientations(
            self.shape, self.factor, self.patch_size, profile, thickness, sigma
        )
        if axes is not None:
            self.orientations = [a for a in self.orientations if a in axes]
            if not self.orientations:
                raise InputError(
                    f"The volume's {'/'.join('YX'[a - 1] for a in axes)} axis ({shape}) is too "
                    f"short for the training window ({self.window_rows} rows at factor "
                    f"{self.factor}); use a smaller --patch-size."
                )
        self.normalizer = (
            normalizer if normalizer is not None else PercentileNormalizer.fit(self.array)
        )
        self.foreground_bias = bool(foreground_bias)
        self.rng = np.random.default_rng(seed)
        self.reference_std = (
            self._reference_std(np.random.default_rng([seed, 1])) if foreground_bias else 0.0
        )

    # -- geometry ---------------------------------------------------------------------------

    def measured_mask(self, phase: int) -> np.ndarray:
        """Boolean ``(P,)``: patch rows that are measured rows for a crop at ``factor + phase``.

        Parameters
        ----------
        phase : int
            Offset of the crop start from a measured row.

        Returns
        -------
        numpy.ndarray of bool
        """
        return measured_rows(self.patch_size, self.factor, first_row=self.factor + phase)

    def _draw_window(self, rng: np.random.Generator) -> tuple:
        """(z, row axis, row start, col start, flip rows, flip cols, mirror the neighbours)."""
        k = self.context
        z = int(rng.integers(k, self.shape[0] - k))
        axis = self.orientations[int(rng.integers(0, len(self.orientations)))]
        n_rows, n_cols = (
            (self.shape[1], self.shape[2]) if axis == 1 else (self.shape[2], self.shape[1])
        )
        r0 = int(rng.integers(0, n_rows - self.window_rows + 1))
        c0 = int(rng.integers(0, n_cols - self.patch_size + 1))
        flips = rng.integers(0, 2, size=2)
        mirrored = bool(rng.integers(0, 2)) if k else False
        return z, axis, r0, c0, bool(flips[0]), bool(flips[1]), mirrored

    def _read_window(self, window: tuple) -> np.ndarray:
        """The normalised window ``(window_rows, patch_size)``, oriented so rows play Z; with
        ``context``, ``(window_rows, patch_size, 2 context + 1)``, the window's slice first."""
        z, axis, r0, c0, flip_rows, flip_cols, mirrored = window
        rows = slice(r0, r0 + self.window_rows)
        cols = slice(c0, c0 + self.patch_size)
        key = (rows, cols) if axis == 1 else (cols, rows)
        if self.planar:
            data = np.asarray(self.array[key])
        elif self.context:
            k = self.context
            stack = np.asarray(self.array[(slice(z - k, z + k + 1), *key)])
            order = [k + d for d in neighbour_offsets(k, mirrored)]
            data = np.moveaxis(stack[order], 0, -1)
        else:
            data = np.asarray(self.array[(z, *key)])
        plane = self.normalizer.normalize(data)
        if axis == 2:
            plane = plane.swapaxes(0, 1)
        if flip_rows:
            plane = plane[::-1]
        if flip_cols:
            plane = plane[:, ::-1]
        return np.ascontiguousarray(plane)

    def _target(self, plane: np.ndarray, phase: int) -> np.ndarray:
        start = self.radius + self.factor + phase
        return plane[start : start + self.patch_size]

    def _degraded(self, plane: np.ndarray, phase: int) -> np.ndarray:
        """``U`` for one window: degrade the region's rows, cubic upsample, crop like the target."""
        measured = degrade(
            plane,
            self.factor,
            axis=0,
            profile=self.profile,
            thickness=self.thickness,
            sigma=self.sigma,
            offset=self.radius % self.factor,
        )
        first = self.radius // self.factor  # kept sample at window row self.radius
        measured = measured[first : first + self.region_intervals + 1]
        interp = upsample(measured, self.factor, axis=0, method="cubic")
        start = self.factor + phase
        return interp[start : start + self.patch_size]

    def _centre_target(self, plane: np.ndarray, phase: int) -> np.ndarray:
        """The target of the window's own slice (channel 0 of a context window)."""
        target = self._target(plane, phase)
        return target[..., 0] if self.context else target

    def _reference_std(self, rng: np.random.Generator) -> float:
        stds = [
            float(self._centre_target(self._read_window(self._draw_window(rng)), 0).std())
            for _ in range(REFERENCE_WINDOWS)
        ]
        return float(np.median(stds))

    def _choose_window(self, rng: np.random.Generator, phase: int) -> np.ndarray:
        best, best_std = None, -1.0
        for _ in range(MAX_CANDIDATES if self.foreground_bias else 1):
            plane = self._read_window(self._draw_window(rng))
            if not self.foreground_bias:
                return plane
            std = float(self._centre_target(plane, phase).std())
            accept = rng.random() < (
                1.0 if self.reference_std <= 0 else min(1.0, std / self.reference_std)
            )
            if accept:
                return plane
            if std > best_std:
                best, best_std = plane, std
        assert best is not None
        return best

    # -- public -----------------------------------------------------------------------------

    def sample(
        self,
        batch_size: int,
        rng: np.random.Generator | None = None,
        return_rows: bool = False,
        phase: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw a batch.

        Parameters
        ----------
        batch_size : int
            Number of pairs ``B``.
        rng : numpy.random.Generator, optional
            Generator to draw from (e.g. ``default_rng([seed, step])`` for resumable training);
            the sampler's own seeded generator otherwise.
        return_rows : bool
            Also return the measured-row mask.
        phase : int, optional
            The crop's offset from a measured row, ``0 <= phase < factor`` (drawn from ``rng``
            when omitted; given when several samplers fill one batch).

        Returns
        -------
        U : numpy.ndarray
            float32 ``(B, 1, P, P)``: degraded along ``H`` then cubic-interpolated, normalised;
            ``(B, 2 context + 1, P, P)`` with ``context``, the pair's own slice first.
        P : numpy.ndarray
            float32 ``(B, 1, P, P)``: the high-resolution target, normalised.
        rows : numpy.ndarray, only with ``return_rows``
            bool ``(B, 1, P, 1)``: ``True`` at measured rows (identical for all items of a batch).
        """
        if batch_size < 1:
            raise ConfigError(f"The batch size must be at least 1, got {batch_size}.")
        rng = self.rng if rng is None else rng
        if phase is None:
            phase = int(rng.integers(0, self.factor))
        size = self.patch_size
        u = np.empty((batch_size, 2 * self.context + 1, size, size), dtype=np.float32)
        p = np.empty((batch_size, 1, size, size), dtype=np.float32)
        for item in range(batch_size):
            plane = self._choose_window(rng, phase)
            p[item, 0] = self._centre_target(plane, phase)
            degraded = self._degraded(plane, phase)
            u[item] = np.moveaxis(degraded, -1, 0) if self.context else degraded
        if not return_rows:
            return u, p
        rows = np.broadcast_to(
            self.measured_mask(phase)[None, None, :, None], (batch_size, 1, size, 1)
        ).copy()
        return u, p, rows

    def describe(self) -> dict:
        """JSON-friendly summary of the sampling geometry.

        Returns
        -------
        dict
        """
        return {
            "factor": self.factor,
            "patch_size": self.patch_size,
            "profile": self.profile,
            "window_rows": self.window_rows,
            "orientations": ["y" if a == 1 else "x" for a in self.orientations],
            "reference_std": self.reference_std,
            "context_rows": self.window_rows - self.patch_size,
        }


@dataclass(frozen=True)
class ReferencePlanes:
    """An isotropic reference volume read once, for :func:`axial_pair_samplers`.

    Holds the reference's XZ and YZ slice stacks (rows = Z; about twice its size in its dtype)
    and its own percentile normaliser, so every training stage draws from them without reading
    the reference again.

    Attributes
    ----------
    stacks : tuple of 2 numpy.ndarray
        ``(Y, Z, X)`` (one XZ slice per Y) and ``(X, Z, Y)`` (one YZ slice per X).
    normalizer : PercentileNormalizer
    shape : tuple of int
        The reference's ``(Z, Y, X)``.
    """

    stacks: tuple[np.ndarray, np.ndarray]
    normalizer: PercentileNormalizer
    shape: tuple[int, int, int]

    @classmethod
    def read(cls, reference: Any) -> ReferencePlanes:
        """Read ``reference`` (array-like ``(Z, Y, X)``, isotropic) into memory.

        Raises
        ------
        InputError
            The reference is not 3-D.
        """
        array = np.asarray(as_lazy_array(reference)[...])
        _require_3d(array.shape, "reference volume")
        xz, yz = (np.ascontiguousarray(array.transpose(o)) for o in ((1, 0, 2), (2, 0, 1)))
        return cls((xz, yz), PercentileNormalizer.fit(array), tuple(int(n) for n in array.shape))


def axial_pair_samplers(
    planes: ReferencePlanes,
    factor: int,
    profile: str = "none",
    thickness: float | None = None,
    sigma: float | None = None,
    patch_size: int = 64,
    seed: int = 0,
    context: int = 0,
) -> list[PairSampler]:
    """Samplers of true Z pairs from an *isotropic* volume: its XZ and YZ slices degraded along Z.

    A user's anisotropic volume can only teach from its XY slices, one lateral axis playing Z. An
    isotropic volume of similar data (e.g. FIB-SEM at isotropic voxels) has real XZ and YZ planes:
    degraded along Z they are pairs from the very planes and direction a restore works on
    (``benchmarks/probes/skeleton_axial_pairs.py``: +0.05 to +0.18 dB over XY pairs of the same
    volume on FIB-SEM). The reference is normalised on its own.

    Parameters
    ----------
    planes : ReferencePlanes
        The reference, read once (:meth:`ReferencePlanes.read`).
    factor, profile, thickness, sigma, patch_size, seed
        As :class:`PairSampler`.
    context : int
        Neighbouring XZ (YZ) slices on each side with every pair, one voxel apart along Y (X) as
        in a restore (:mod:`skelem.models.context`).

    Returns
    -------
    list of PairSampler
        The XZ and the YZ sampler (each: rows = Z, every window degraded along Z).

    Raises
    ------
    InputError
        The reference is too small along Z, Y or X for the training window.
    """
    check_reference_shape(planes.shape, factor, patch_size, profile, thickness, sigma)
    return [
        PairSampler(
            stack,
            factor,
            profile=profile,
            thickness=thickness,
            sigma=sigma,
            patch_size=patch_size,
            normalizer=planes.normalizer,
            seed=seed,
            axes=(1,),  # axis 1 of each stack is the reference's Z
            context=context,
        )
        for stack in planes.stacks
    ]


def _require_3d(shape: tuple[int, ...], name: str) -> None:
    if len(shape) != 3:
        raise InputError(f"The {name} must be 3-D (Z, Y, X), got shape {tuple(shape)}.")


def check_reference_shape(
    shape: tuple[int, ...],
    factor: int,
    patch_size: int,
    profile: str = "none",
    thickness: float | None = None,
    sigma: float | None = None,
    name: str = "reference volume",
) -> None:
    """Refuse, in one sentence, a reference too small for true Z pairs (or not 3-D).

    Raises
    ------
    InputError
    """
    _require_3d(shape, name)
    rows = pair_window(factor, patch_size, profile, thickness, sigma)[2]
    nz, ny, nx = (int(n) for n in shape)
    if nz < rows or min(ny, nx) < patch_size:
        raise InputError(
            f"The {name} ({nz}x{ny}x{nx}) is too small for true Z pairs: they need {rows} slices "
            f"along Z and {patch_size} voxels in Y and X at factor {factor}; use a larger "
            "reference or a smaller --patch-size."
        )


class MixedPairSampler:
    """Batches drawn from several pair samplers, each item from one of them at random.

    Every item's source is drawn with the given weights; the phase is drawn once per batch and
    shared by all sources, so the batch keeps one measured-row mask. Sources without neighbouring
    slices (a volume's XY pairs) repeat their ``U`` to the channels of those with them.

    Parameters
    ----------
    parts : sequence of PairSampler
        Samplers of one factor and patch size.
    weights : sequence of float
        Relative share of each part (non-negative, not all zero).
    """

    def __init__(self, parts: list[PairSampler], weights: list[float]) -> None:
        if not parts or len(parts) != len(weights):
            raise ConfigError("A mixed pair sampler needs one weight per sampler.")
        w = np.asarray(weights, dtype=np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ConfigError(f"The pair sampler weights must be >= 0, not all 0; got {weights}.")
        if len({(s.factor, s.patch_size) for s in parts}) != 1:
            raise ConfigError("Mixed pair samplers need one factor and one patch size.")
        self.parts, self.weights = list(parts), w / w.sum()
        self.factor, self.patch_size = parts[0].factor, parts[0].patch_size
        self.normalizer = parts[0].normalizer

    def measured_mask(self, phase: int) -> np.ndarray:
        """As :meth:`PairSampler.measured_mask`."""
        return self.parts[0].measured_mask(phase)

    def sample(
        self, batch_size: int, rng: np.random.Generator | None = None, return_rows: bool = False
    ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`PairSampler.sample`; items grouped by source, in the parts' order."""
        if batch_size < 1:
            raise ConfigError(f"The batch size must be at least 1, got {batch_size}.")
        rng = self.parts[0].rng if rng is None else rng
        phase = int(rng.integers(0, self.factor))
        counts = np.bincount(
            rng.choice(len(self.parts), size=batch_size, p=self.weights),
            minlength=len(self.parts),
        )
        drawn = [
            part.sample(int(n), rng=rng, phase=phase)
            for part, n in zip(self.parts, counts, strict=True)
            if n
        ]
        channels = max(d[0].shape[1] for d in drawn)  # XY pairs repeat their slice
        u = np.concatenate([np.repeat(d[0], channels // d[0].shape[1], axis=1) for d in drawn])
        p = np.concatenate([d[1] for d in drawn])
        if not return_rows:
            return u, p
        size = self.patch_size
        rows = np.broadcast_to(
            self.measured_mask(phase)[None, None, :, None], (batch_size, 1, size, 1)
        ).copy()
        return u, p, rows
