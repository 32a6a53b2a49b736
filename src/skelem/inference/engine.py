"""Slice-level restoration: the networks applied to batches of interpolated 2-D slices.

A slice has its axial direction along rows (``H``); its measured rows are those whose global output
row index is a multiple of the factor. Everything here works on normalised float32 intensities.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from skelem.config.models import DiffusionConfig
from skelem.data.interpolation import output_length, upsample
from skelem.diffusion.noise import voxel_noise_batch
from skelem.diffusion.prior import apply_consistency
from skelem.diffusion.refine import RefineSettings, refine_residual, residual_start
from skelem.diffusion.sampler import ddim_sample, ddim_steps
from skelem.diffusion.schedule import NoiseSchedule, truncated_timesteps
from skelem.grid import measured_rows
from skelem.inference.autotune import autotune_enabled, tuned_slices_per_call
from skelem.models.context import mirrored_range, skeleton_context, with_neighbours
from skelem.models.unet import pad_to_multiple
from skelem.seeds import derive_seed

STREAM_SAMPLING_MOVE = 1  # key of the fresh noise of each stochastic sampling move

# Pixels per network call (batch x height x width) for a U-Net of REFERENCE_CHANNELS channels; a
# network of c channels gets REFERENCE_CHANNELS / c times as many, so every network's activations
# stay within about the same memory. On this 2-core CPU one 208 x 592 slice at a time runs 1.7x
# faster per slice than batches of 8 and needs ~80 MiB of activations instead of ~630 MiB
# (benchmarks/RESULTS.md, peak memory); a GPU wants larger batches.
CPU_BATCH_PIXELS = 2**17
CUDA_BATCH_PIXELS = 2**22
REFERENCE_CHANNELS = 16


def batch_pixels(device: torch.device) -> int:
    """Default pixel budget of one network call on ``device``.

    Parameters
    ----------
    device : torch.device
        Where the networks run.

    Returns
    -------
    int
        ``CUDA_BATCH_PIXELS`` on a GPU, else ``CPU_BATCH_PIXELS``.
    """
    return CUDA_BATCH_PIXELS if device.type == "cuda" else CPU_BATCH_PIXELS


class UpsampledSlices:
    """The Z-interpolated slices of a block along one cross-plane, interpolated on demand.

    ``source[rows]`` equals ``upsample(block, factor, method=method).transpose(perm)[rows]``
    bit for bit (the interpolation is elementwise along Z), so a pass never needs the whole
    interpolated block: a block-sized float32 array less at the peak per pass.

    Parameters
    ----------
    block : numpy.ndarray
        The acquired block ``(z, y, x)``.
    factor : int
        Anisotropy factor.
    perm : tuple of int
        ``(1, 0, 2)`` for XZ slices ``(y, Z, x)``, ``(2, 0, 1)`` for YZ slices ``(x, Z, y)``.
    method : str
        The interpolation (:func:`~skelem.data.interpolation.upsample`).
    """

    def __init__(
        self, block: np.ndarray, factor: int, perm: tuple[int, int, int], method: str = "cubic"
    ) -> None:
        if perm[1] != 0:
            raise ValueError("slices must keep Z as their rows")
        self._view = block.transpose(perm)
        self.factor, self.method = factor, method
        n, z, w = self._view.shape
        self.shape = (n, output_length(z, factor), w)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        return upsample(self._view[rows], self.factor, axis=1, method=self.method)


@dataclass
class SliceEngine:
    """Restores batches of interpolated slices ``(N, H, W)`` with one method.

    Parameters
    ----------
    method : {"skeleton", "skelem", "diffusion"}
    skeleton, refiner, peer : torch.nn.Module or None
        Networks in eval mode (the skeleton is never modified: it runs under ``inference_mode``).
    diffusion : DiffusionConfig
        Schedule, ``t0`` and number of steps.
    steps, t0 : int, optional
        Overrides of the sampler's number of steps and start timestep.
    use_prior, use_consistency : bool
        Ablation switches of the cycle-consistent mechanism (SkelEM only).
    residual_scale : float
        The refiner works on ``residual / residual_scale`` (the scale it was trained with).
    multiple : int
        Spatial sizes fed to the networks are padded to a multiple of this.
    batch_size : int
        At most this many slices per network call...
    max_batch_pixels : int, optional
        ...and at most this many (padded) pixels for a network of ``REFERENCE_CHANNELS`` channels
        (scaled by ``REFERENCE_CHANNELS / channels`` for the others), at least one slice: the
        activations of one call, and so the peak memory, are bounded whatever the block and the
        network's width. Default: :func:`batch_pixels`.
    eta : float
        Stochasticity of the refiner's (and the peer's) sampling moves: 0 deterministic DDIM,
        1 the DDPM posterior variance. The fresh noise of every move is keyed by global
        coordinates, the seed and the move, so overlapping tiles draw the same.
    detail : float
        The fidelity-perception knob of SkelEM (:class:`~skelem.diffusion.refine.RefineSettings`).
    slow_modes : int
        Axial sine modes of SkelEM's sampled detail removed between measured rows (ditto).
    autotune : bool, optional
        Choose the slices per call (within ``batch_size`` and the pixel budget) by a measurement
        cached per machine (:mod:`skelem.inference.autotune`). Default: ``SKELEM_AUTOTUNE=1`` in
        the environment.
    tta : bool
        Test-time augmentation of the skeleton: the mean of its outputs over the flips of each
        slice that keep the axial direction along rows (columns always; rows too when the
        measured rows are symmetric, as in every planned block). Four skeleton passes.

    A skeleton with neighbouring slices as input channels (:mod:`skelem.models.context`) gets
    them from the slices of the same pass, mirrored at the ends of the stack (a block's halo is
    wide enough that only the volume's own ends are ever mirrored in kept output).
    """

    method: str
    device: torch.device
    multiple: int
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    skeleton: torch.nn.Module | None = None
    refiner: torch.nn.Module | None = None
    peer: torch.nn.Module | None = None
    steps: int | None = None
    t0: int | None = None
    use_prior: bool = True
    use_consistency: bool = True
    batch_size: int = 8
    residual_scale: float = 1.0
    max_batch_pixels: int | None = None
    eta: float = 0.0
    tta: bool = False
    detail: float = 1.0
    slow_modes: int = 0
    autotune: bool | None = None

    def __post_init__(self) -> None:
        if self.autotune is None:
            self.autotune = autotune_enabled()
        if self.max_batch_pixels is None:
            self.max_batch_pixels = batch_pixels(self.device)
        self.schedule = NoiseSchedule(self.diffusion.timesteps, self.diffusion.schedule)
        if self.method == "skelem":
            t0 = self.t0 if self.t0 is not None else self.diffusion.t0
            self.timesteps = truncated_timesteps(t0, self.steps or self.diffusion.steps)
        elif self.method == "diffusion":
            self.timesteps = truncated_timesteps(
                self.diffusion.timesteps, self.steps or self.diffusion.diffusion_peer_steps
            )
        else:
            self.timesteps = []
        self.context = skeleton_context(self.skeleton)

    @torch.inference_mode()
    def restore(
        self,
        slices: np.ndarray | UpsampledSlices,
        first_row: int,
        factor: int,
        plane: str,
        slice_indices: np.ndarray,
        col_origin: int,
        seed: int = 0,
        out: np.ndarray | None = None,
        accumulate: threading.Lock | None = None,
    ) -> np.ndarray:
        """Restore ``slices`` ``(N, H, W)``.

        Parameters
        ----------
        slices : numpy.ndarray or UpsampledSlices
            The interpolated slices, or a source that interpolates them batch by batch (the
            same values without a block-sized interpolated copy).
        first_row : int
            Global output row (z) of row 0; rows with ``(first_row + r) % factor == 0`` are
            measured.
        plane : {"xz", "yz"}
            Which cross-plane the slices come from (part of the noise key).
        slice_indices : array of int
            Global index (y for XZ, x for YZ) of each slice (part of the noise key).
        col_origin : int
            Global coordinate of column 0 (x for XZ slices, y for YZ slices).
        out : numpy.ndarray, optional
            float32 ``(N, H, W)`` (a view is fine) that receives the restored slices, instead
            of a new array.
        accumulate : threading.Lock, optional
            Add the restored slices to ``out`` under this lock instead of writing them (two
            passes summed into one array: float addition commutes, so the order they reach it
            in does not change the bits).

        Returns
        -------
        numpy.ndarray
            ``out`` (or a new float32 ``(N, H, W)``).
        """
        n, h, w = slices.shape
        if out is None:
            out = np.empty((n, h, w), dtype=np.float32)
        step = self.slices_per_call(h, w, self._main_network)
        k = self.context
        for start in range(0, n, step):
            stop = min(n, start + step)
            # with context, the batch carries k neighbour-only slices on each side
            rows = mirrored_range(n, start - k, stop + k) if k else slice(start, stop)
            batch = torch.from_numpy(np.ascontiguousarray(slices[rows], dtype=np.float32))[:, None]
            batch = batch.to(self.device)
            padded, (ph, pw) = pad_to_multiple(batch, self.multiple)
            mask = self._row_mask(padded.shape[-2], h, factor, first_row)
            restored = self._restore_batch(
                padded,
                (ph, pw),
                mask,
                first_row,
                plane,
                slice_indices[start:stop],
                col_origin,
                seed,
            )
            result = restored[:, 0, :ph, :pw].float().cpu().numpy()
            if accumulate is None:
                out[start:stop] = result
            else:
                with accumulate:
                    out[start:stop] += result
        return out

    def slices_per_call(self, h: int, w: int, network: torch.nn.Module | None = None) -> int:
        """Slices of ``h x w`` per call of ``network``: within ``batch_size`` and the pixel budget
        (scaled to the network's width; reference width when None), at least one.

        Parameters
        ----------
        h, w : int
            Slice size in pixels (before padding to ``multiple``).
        network : torch.nn.Module, optional
            The network called (its ``channels`` scale the budget).

        Returns
        -------
        int
        """
        m = self.multiple
        pixels = (-(-h // m) * m) * (-(-w // m) * m)
        channels = getattr(network, "channels", REFERENCE_CHANNELS)
        budget = self.max_batch_pixels * REFERENCE_CHANNELS // max(1, channels)
        limit = max(1, min(self.batch_size, budget // pixels))
        if self.autotune and network is not None and limit > 1:
            shape = (-(-h // m) * m, -(-w // m) * m)
            return tuned_slices_per_call(network, shape, self.device, limit)
        return limit

    @property
    def _main_network(self) -> torch.nn.Module | None:
        """The network that sets the batch of :meth:`restore` (the one run most often)."""
        return {"skeleton": self.skeleton, "skelem": self.refiner, "diffusion": self.peer}[
            self.method
        ]

    def _skeleton_calls(self, u: torch.Tensor, ext: int = 0) -> torch.Tensor:
        """The skeleton over a padded stack ``u`` ``(N, 1, H, W)`` whose first and last ``ext``
        slices are neighbours only, in calls within its own pixel budget: ``N - 2 ext`` slices."""
        k, count = self.context, u.shape[0] - 2 * ext
        step = self.slices_per_call(u.shape[-2], u.shape[-1], self.skeleton)
        calls = [
            self.skeleton(with_neighbours(u, k, ext + i, ext + min(count, i + step)))
            for i in range(0, count, step)
        ]
        return calls[0] if len(calls) == 1 else torch.cat(calls)

    def _skeleton(
        self, u: torch.Tensor, size: tuple[int, int], mask: torch.Tensor, ext: int = 0
    ) -> torch.Tensor:
        """The skeleton's output on a padded stack ``u`` whose valid part is ``size`` (h, w) and
        whose first and last ``ext`` slices are neighbours only (:meth:`_skeleton_calls`).

        With ``tta`` the valid part is the mean over the flips that keep the axial direction
        (each flipped before padding, so every variant sees the same slice); rows are flipped
        only when the measured rows ``mask[:h]`` are symmetric, so flipped measured rows stay
        measured rows.
        """
        skel = self._skeleton_calls(u, ext)
        if not self.tta:
            return skel
        h, w = size
        rows = mask[:h]
        flips: list[tuple[int, ...]] = [(-1,)]
        if torch.equal(rows, rows.flip(0)):
            flips += [(-2,), (-2, -1)]
        valid = u[..., :h, :w]
        total = skel[..., :h, :w].clone()
        for dims in flips:
            padded, _ = pad_to_multiple(valid.flip(dims), self.multiple)
            total += self._skeleton_calls(padded, ext)[..., :h, :w].flip(dims)
        skel[..., :h, :w] = total / (1 + len(flips))
        return skel

    def _noise(
        self,
        shape: tuple[int, ...],
        first_row: int,
        plane: str,
        indices: np.ndarray,
        col_origin: int,
        seed: int,
    ) -> tuple[torch.Tensor, Callable[[int], torch.Tensor] | None]:
        """The start noise of a batch and the fresh noise of every sampling move.

        Both are keyed by the global voxel ``(z, y, x)`` and the seed (so the XZ and the YZ
        pass draw the same value where they cross: their detail agrees, :func:`voxel_noise_numpy`);
        move ``m`` uses the seed derived from ``(seed, STREAM_SAMPLING_MOVE, m)``. The move noise
        is None when sampling is deterministic (``eta == 0``).
        """
        _, _, h, w = shape

        def keyed(noise_seed: int) -> torch.Tensor:
            return voxel_noise_batch(
                plane, indices, (h, w), (first_row, col_origin), noise_seed, device=self.device
            )

        if self.eta <= 0:
            return keyed(seed), None
        return keyed(seed), lambda move: keyed(derive_seed(seed, STREAM_SAMPLING_MOVE, move))

    def _restore_batch(
        self,
        u: torch.Tensor,
        size: tuple[int, int],
        mask: torch.Tensor,
        first_row: int,
        plane: str,
        indices: np.ndarray,
        col_origin: int,
        seed: int,
    ) -> torch.Tensor:
        """One batch of :meth:`restore`; ``u`` carries ``context`` neighbour-only slices on
        each side (none without context)."""
        ext = self.context
        if self.method == "skeleton":
            return self._skeleton(u, size, mask, ext)
        skel = self._skeleton(u, size, mask, ext) if self.method == "skelem" else None
        u = u[ext : u.shape[0] - ext]
        noise, step_noise = self._noise(tuple(u.shape), first_row, plane, indices, col_origin, seed)
        if self.method == "diffusion":

            def denoise_peer(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                return self.peer(torch.cat([x, u], dim=1), t)

            return ddim_sample(
                denoise_peer,
                noise,
                self.timesteps,
                self.schedule,
                self.diffusion.prediction,
                eta=self.eta,
                step_noise=step_noise,
            )
        return skel + refine_residual(
            self.refiner, u, skel, mask, noise, self.refine_settings, step_noise
        )

    @property
    def refine_settings(self) -> RefineSettings:
        """How this engine samples the residual (see :mod:`skelem.diffusion.refine`)."""
        return RefineSettings(
            schedule=self.schedule,
            timesteps=list(self.timesteps),
            prediction=self.diffusion.prediction,
            residual_scale=self.residual_scale,
            use_prior=self.use_prior,
            use_consistency=self.use_consistency,
            prior_attenuation=self.diffusion.prior_attenuation,
            eta=self.eta,
            detail=self.detail,
            slow_modes=self.slow_modes,
        )

    @torch.inference_mode()
    def restore_joint(
        self, interp: np.ndarray, origin: tuple[int, int, int], factor: int, seed: int = 0
    ) -> np.ndarray:
        """SkelEM on a block with its XZ and YZ passes sampled jointly (``fuse="steps"``).

        Both passes start as in :meth:`restore`. After every step each pass's image estimate
        (skeleton + residual) is formed over the whole block, the two are averaged, and each pass
        continues from the average (its residual becomes the average minus its own skeleton). The
        passes thus end identical: detail drawn in one plane is seen by the other at the next step,
        instead of two independent drawings being averaged at the end. Measured rows stay exact
        (both passes hold the measured value there). Each pass is one
        :func:`~skelem.diffusion.sampler.ddim_steps` stepper; the two advance in turn.

        Parameters
        ----------
        interp : numpy.ndarray
            The interpolated block ``(Z, Y, X)``, normalised float32.
        origin : tuple of int
            Its global output origin ``(z, y, x)``.
        factor : int
            Anisotropy factor.
        seed : int
            Seed of the coordinate-keyed noise.

        Returns
        -------
        numpy.ndarray
            The restored block ``(Z, Y, X)``. Holds about ten block-sized float32 arrays.
        """
        if self.method != "skelem":
            raise ValueError("joint sampling needs the skelem method")
        z0, y0, x0 = origin
        nz, ny, nx = interp.shape
        passes = [
            self._joint_pass(interp, "xz", (1, 0, 2), np.arange(y0, y0 + ny), z0, x0, factor, seed),
            self._joint_pass(interp, "yz", (2, 0, 1), np.arange(x0, x0 + nx), z0, y0, factor, seed),
        ]
        to_block = {"xz": (1, 0, 2), "yz": (1, 2, 0)}
        from_block = {"xz": (1, 0, 2), "yz": (2, 0, 1)}
        steppers = [self._joint_stepper(p) for p in passes]
        estimates = [next(stepper) for stepper in steppers]
        while True:
            fused = None
            for p, (_, _, x0_p) in zip(passes, estimates, strict=True):
                image = (p["skel"] + x0_p * self.residual_scale)[:, 0, :nz, : p["w"]]
                image = image.permute(*to_block[p["plane"]])
                fused = image if fused is None else 0.5 * (fused + image)
            if estimates[0][1] == 0:  # t_prev: the last step
                return fused.float().cpu().numpy()
            for k, (p, (_, _, x0_p)) in enumerate(zip(passes, estimates, strict=True)):
                w = p["w"]
                own = fused.permute(*from_block[p["plane"]])  # (slices, nz, w)
                x0_p[:, 0, :nz, :w] = (own - p["skel"][:, 0, :nz, :w]) / self.residual_scale
                if self.use_consistency:
                    x0_p = apply_consistency(x0_p, p["measured"], p["row_mask"])
                estimates[k] = steppers[k].send(x0_p)

    def _joint_pass(
        self,
        interp: np.ndarray,
        plane: str,
        perm: tuple[int, int, int],
        indices: np.ndarray,
        first_row: int,
        col_origin: int,
        factor: int,
        seed: int,
    ) -> dict:
        """Start of one pass of :meth:`restore_joint`: padded slices, skeleton, prior, ``x_t0``."""
        slices = np.ascontiguousarray(interp.transpose(perm), dtype=np.float32)
        u, (h, w) = pad_to_multiple(
            torch.from_numpy(slices)[:, None].to(self.device), self.multiple
        )
        mask = self._row_mask(u.shape[-2], h, factor, first_row)
        row_mask = mask.view(1, 1, -1, 1)
        skel = self._skeleton(u, (h, w), mask)  # neighbours: the pass's own slices
        step = self.slices_per_call(h, w, self.refiner)
        noise, step_noise = self._noise(tuple(u.shape), first_row, plane, indices, col_origin, seed)
        measured, x_t = residual_start(u, skel, row_mask, noise, self.refine_settings)
        return {
            "step_noise": step_noise,
            "plane": plane,
            "u": u,
            "skel": skel,
            "measured": measured,
            "row_mask": row_mask,
            "use_rows": bool(mask.any()),
            "x_t": x_t,
            "step": step,
            "w": w,
        }

    def _joint_stepper(self, p: dict):
        """The DDIM stepper of one pass: the refiner batch by batch, consistent estimates."""

        def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            out = [
                self.refiner(torch.cat([x_t[sl], p["skel"][sl], p["u"][sl]], dim=1), t[sl])
                for sl in (slice(i, i + p["step"]) for i in range(0, x_t.shape[0], p["step"]))
            ]
            return out[0] if len(out) == 1 else torch.cat(out)

        consistency = None
        if self.use_consistency and p["use_rows"]:

            def consistency(x0: torch.Tensor) -> torch.Tensor:
                return apply_consistency(x0, p["measured"], p["row_mask"])

        return ddim_steps(
            denoise,
            p["x_t"],
            self.timesteps,
            self.schedule,
            self.diffusion.prediction,
            consistency,
            eta=self.eta,
            step_noise=p["step_noise"],
        )

    def _row_mask(self, padded_rows: int, rows: int, factor: int, first_row: int) -> torch.Tensor:
        """Boolean ``(padded_rows,)`` mask of the measured rows among the first ``rows``."""
        mask = torch.zeros(padded_rows, dtype=torch.bool, device=self.device)
        mask[:rows] = torch.from_numpy(measured_rows(rows, factor, first_row)).to(self.device)
        return mask
