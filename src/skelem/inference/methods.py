"""Restoration methods: small objects the block runner calls, one per way of restoring a block.

A method restores a normalised input block ``(z, y, x)`` into ``(s*(z-1)+1, y, x)``. It knows the
networks it needs, the halo and alignment its blocks must be planned with (``halo``, ``align``)
and how to describe itself in an output's metadata (:meth:`describe`). :func:`build_method` picks
and checks one for a model and :class:`~skelem.config.restore.RestoreOptions`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from skelem.config.restore import INTERPOLATION_METHODS, RestoreOptions, check_sampling
from skelem.data.interpolation import output_length, upsample
from skelem.errors import ConfigError, ModelError
from skelem.inference.engine import SliceEngine, UpsampledSlices
from skelem.inference.networks import load_networks, network_geometry
from skelem.inference.planner import Block, block_output_origin
from skelem.models.artifact import ModelArtifact
from skelem.models.device import resolve_device, torch_threads

Origin = tuple[int, int, int]


def default_method(artifact: ModelArtifact | None) -> str:
    """The method used when none is asked for: ``skelem`` with a refiner, else ``skeleton``;
    ``cubic`` without a model.

    Parameters
    ----------
    artifact : ModelArtifact or None
        The trained model, if any.

    Returns
    -------
    str
    """
    if artifact is None:
        return "cubic"
    return "skelem" if artifact.has("refiner") else "skeleton"


class RestorationMethod:
    """What the block runner calls: restores normalised blocks with one method.

    Attributes
    ----------
    method : str
        The method's name.
    factor : int
        Anisotropy factor.
    options : RestoreOptions
        The restore options.
    halo : tuple of int
        Context ``(z, y, x)`` in output voxels the blocks must be planned with.
    align : int
        Size multiple of the networks (read regions start on it).
    engine : SliceEngine or None
        The slice engine of a network method.
    joint : bool
        Both cross-plane passes sampled jointly (``fuse="steps"``).
    """

    networks: tuple[str, ...] = ()
    stochastic = False
    engine: SliceEngine | None = None
    joint = False

    def __init__(self, name: str, factor: int, options: RestoreOptions) -> None:
        self.method, self.factor, self.options = name, factor, options
        self.halo = (2 * factor, 0, 0)
        self.align = 1

    def describe(self) -> dict:
        """What restored an output, for its metadata (method, factor, planes if one).

        Returns
        -------
        dict
            JSON-friendly.
        """
        out = {"method": self.method, "factor": self.factor}
        if self.options.planes != "both":
            out["planes"] = self.options.planes
        return out

    def restore_block(
        self, block: np.ndarray, origin: Origin, seed: int | None = None
    ) -> np.ndarray:
        """Restore one normalised input block.

        Parameters
        ----------
        block : numpy.ndarray
            Normalised input ``(z, y, x)``.
        origin : tuple of int
            Global output coordinate ``(z, y, x)`` of the block output's first voxel.
        seed : int, optional
            Noise seed (default ``options.seed``; unused by deterministic methods).

        Returns
        -------
        numpy.ndarray
            float32 ``(s*(z-1)+1, y, x)``.
        """
        raise NotImplementedError


class Interpolation(RestorationMethod):
    """Interpolation along Z (``nearest``, ``linear`` or ``cubic``): no networks.

    Parameters
    ----------
    name : {"nearest", "linear", "cubic"}
        The interpolation.
    factor : int
        Anisotropy factor.
    options : RestoreOptions
        The restore options (``planes`` is recorded, not used).
    """

    def restore_block(
        self, block: np.ndarray, origin: Origin, seed: int | None = None
    ) -> np.ndarray:
        """Interpolate one block along Z (see :meth:`RestorationMethod.restore_block`)."""
        return upsample(block, self.factor, axis=0, method=self.method)


class _NetworkMethod(RestorationMethod):
    """A method that runs networks over the XZ and/or YZ slices of the cubic-interpolated block."""

    def __init__(self, artifact: ModelArtifact, factor: int, options: RestoreOptions) -> None:
        super().__init__(self.name, factor, options)
        device = resolve_device(options.device)
        nets = load_networks(artifact, self.networks, device, options.aligned, options.backend)
        self.align, radius = network_geometry(artifact, nets)
        self.halo = (radius + self.extra_z_halo, radius, radius)
        self.engine = SliceEngine(
            method=self.method,
            device=device,
            multiple=self.align,
            diffusion=artifact.config.diffusion,
            skeleton=nets.get("skeleton"),
            refiner=nets.get("refiner"),
            peer=nets.get("diffusion_peer"),
            steps=options.steps,
            t0=options.t0,
            use_prior=options.use_prior,
            use_consistency=options.use_consistency,
            batch_size=options.batch_size,
            residual_scale=artifact.residual_scale,
            eta=artifact.config.diffusion.eta if options.eta is None else options.eta,
            tta=options.tta,
            detail=artifact.config.diffusion.detail if options.detail is None else options.detail,
            slow_modes=(
                artifact.config.diffusion.slow_modes
                if options.slow_modes is None
                else options.slow_modes
            ),
        )

    name = ""
    extra_z_halo = 0

    def describe(self) -> dict:
        """What restored an output: as the base, plus the sampling if stochastic."""
        out = super().describe()
        if self.options.tta and "skeleton" in self.networks:
            out["tta"] = True
        if self.stochastic:
            o = self.options
            out.update(timesteps=self.engine.timesteps, seed=o.seed, samples=o.samples)
            if self.engine.eta > 0:
                out["eta"] = self.engine.eta
            out["detail"] = self.engine.detail
            if self.engine.slow_modes:
                out["slow_modes"] = self.engine.slow_modes
        return out

    def restore_block(
        self, block: np.ndarray, origin: Origin, seed: int | None = None
    ) -> np.ndarray:
        """Restore one normalised input block (see :meth:`RestorationMethod.restore_block`)."""
        seed = self.options.seed if seed is None else seed
        if self.joint:
            interp = upsample(block, self.factor, axis=0, method="cubic")
            return self.engine.restore_joint(interp, origin, self.factor, seed)
        return self._cross_planes(block, origin, seed)

    def _cross_planes(self, block: np.ndarray, origin: Origin, seed: int) -> np.ndarray:
        """The XZ pass, the YZ pass, or both averaged (``options.planes``).

        Each pass interpolates its slices batch by batch and writes them straight into the
        one output array (both passes add into it), so the block's peak holds one block-sized
        float32 array, not an interpolated block and one per pass.
        """
        z0, y0, x0 = origin
        _, ny, nx = block.shape
        engine, factor, planes = self.engine, self.factor, self.options.planes
        nz = output_length(block.shape[0], factor)
        if planes == "both":
            # -0.0 is the identity of float addition (+0.0 would turn a -0.0 sum into +0.0)
            out, lock = np.full((nz, ny, nx), -0.0, np.float32), threading.Lock()
        else:
            out, lock = np.empty((nz, ny, nx), np.float32), None

        def xz_pass() -> None:
            slices = UpsampledSlices(block, factor, (1, 0, 2))
            target = out.transpose(1, 0, 2)
            engine.restore(slices, z0, factor, "xz", np.arange(y0, y0 + ny), x0, seed, target, lock)

        def yz_pass() -> None:
            slices = UpsampledSlices(block, factor, (2, 0, 1))
            target = out.transpose(2, 0, 1)
            engine.restore(slices, z0, factor, "yz", np.arange(x0, x0 + nx), y0, seed, target, lock)

        if planes == "xz":
            xz_pass()
        elif planes == "yz":
            yz_pass()
        else:
            _both_passes(xz_pass, yz_pass, engine.device)
            out *= 0.5
        return out


def _both_passes(
    first: Callable[[], None], second: Callable[[], None], device: torch.device
) -> None:
    """Run the two independent cross-plane passes; on a CPU with 2+ torch threads, at once.

    Two passes side by side on half the threads each beat one pass after the other on all of
    them (a 16-channel network keeps one core busy better than two: 1.1-1.3x on this machine's two
    cores, RESULTS.md issue 13). With 2 threads each pass runs on 1, as it does on a 1-thread
    worker, so the output does not depend on which of the two ran it.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads < 2:
        first()
        second()
        return
    with torch_threads(threads // 2), ThreadPoolExecutor(1, "skelem-pass") as pool:
        later = pool.submit(second)
        first()
        later.result()


class Skeleton(_NetworkMethod):
    """The skeleton U-Net alone: the deterministic regression peer."""

    name = "skeleton"
    networks = ("skeleton",)


class SkelEM(_NetworkMethod):
    """Skeleton plus the truncated, consistency-constrained refiner (the method of SkelEM)."""

    name = "skelem"
    networks = ("skeleton", "refiner")
    stochastic = True

    def __init__(self, artifact: ModelArtifact, factor: int, options: RestoreOptions) -> None:
        self.extra_z_halo = factor  # the residual prior reaches one slice gap further along z
        super().__init__(artifact, factor, options)
        self.joint = options.planes == "both" and options.fuse == "steps"

    def describe(self) -> dict:
        """As the other network methods, plus the ablation switches and the fusion."""
        out = super().describe()
        o = self.options
        out.update(prior=o.use_prior, consistency=o.use_consistency, aligned=o.aligned)
        if o.planes == "both":
            out["fuse"] = o.fuse
        if self.joint:  # the joint sampler keeps all the detail, whatever the model's default
            out["detail"] = 1.0
            out.pop("slow_modes", None)
        return out


class Diffusion(_NetworkMethod):
    """The pure-diffusion peer: full reverse diffusion conditioned on the interpolation."""

    name = "diffusion"
    networks = ("diffusion_peer",)
    stochastic = True


_NETWORK_METHODS: dict[str, type[_NetworkMethod]] = {
    cls.name: cls for cls in (Skeleton, SkelEM, Diffusion)
}


def build_method(
    artifact: ModelArtifact | None, factor: int, options: RestoreOptions
) -> RestorationMethod:
    """The method ``options.method`` (or the model's default), checked against the model.

    Parameters
    ----------
    artifact : ModelArtifact or None
        The trained model (not needed for interpolation).
    factor : int
        Anisotropy factor of the volume to restore.
    options : RestoreOptions
        The restore options.

    Returns
    -------
    RestorationMethod
        An :class:`Interpolation`, :class:`Skeleton`, :class:`SkelEM` or :class:`Diffusion`.

    Raises
    ------
    ModelError, ConfigError
        No model for a network method, a model for another factor, samples of a deterministic
        method, sampling the model's schedule cannot follow.
    """
    name = options.method or default_method(artifact)
    if name in INTERPOLATION_METHODS:
        return Interpolation(name, factor, options)
    if artifact is None:
        raise ModelError(f"The {name} method needs a trained model: pass --model MODEL_DIR.")
    if artifact.factor != factor:
        raise ModelError(
            f"The model in {artifact.directory} was trained for factor {artifact.factor}, "
            f"but this volume needs factor {factor}; train a model for this factor."
        )
    cls = _NETWORK_METHODS[name]
    if options.samples > 1 and not cls.stochastic:
        raise ConfigError(
            "--samples needs a stochastic method (skelem or diffusion); the skeleton is "
            "deterministic."
        )
    check_sampling(options, name, artifact.config.diffusion)
    return cls(artifact, factor, options)


def block_processor(
    method: RestorationMethod, store_std: Callable[[Block, np.ndarray], None] | None = None
) -> Callable[[np.ndarray, Block], np.ndarray]:
    """``process(block_in, block)`` -> the restored block (mean of ``samples`` seeds).

    With several samples, ``store_std(block, std)`` receives the per-voxel standard deviation of
    the block's write region before the mean is returned (so a resumed run never has a mean
    without it).

    Parameters
    ----------
    method : RestorationMethod
        The method (see :func:`build_method`).
    store_std : callable, optional
        Receives each block's std (normalised units) when ``options.samples > 1``.

    Returns
    -------
    callable
        ``process(block_in, block)`` for the runners of :mod:`skelem.inference.runner`.
    """
    samples, seed = method.options.samples, method.options.seed

    def process(block_in: np.ndarray, block: Block) -> np.ndarray:
        origin = block_output_origin(block, method.factor)
        if samples == 1:
            return method.restore_block(block_in, origin)
        runs = np.stack([method.restore_block(block_in, origin, seed + k) for k in range(samples)])
        if store_std is not None:
            store_std(block, runs.std(axis=0)[block.crop])
        return runs.mean(axis=0)

    return process
