"""The training stages: skeleton, refiner, pure-diffusion peer, and refiner alignment.

Each stage returns a ``step_loss(model, step)`` for :func:`skelem.training.loop.train_stage`.
Batches come from generators seeded by ``(seed, step)``, and every other draw from a named stream
over ``(seed, step, STREAM_*)`` (:mod:`skelem.training.streams`), so resumed runs are identical.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from skelem.config.models import ExperimentConfig
from skelem.data.interpolation import upsample
from skelem.data.pairs import PairSampler
from skelem.diffusion.prior import measured_rows_mask
from skelem.diffusion.refine import RefineSettings, refine_residual
from skelem.diffusion.schedule import NoiseSchedule, truncated_timesteps
from skelem.models.context import (
    input_channels,
    repeat_channels,
    skeleton_context,
    with_neighbours,
)
from skelem.seeds import numpy_rng, torch_generator
from skelem.training.loop import StepLoss
from skelem.training.losses import (
    SKELETON_LOSSES,
    denoising_loss,
    gaussian_blur,
    row_texture_energy,
    texture_log_ratio,
)
from skelem.training.streams import (
    STREAM_ALIGNMENT_ANCHOR,
    STREAM_ALIGNMENT_NOISE,
    STREAM_ALIGNMENT_PATCHES,
    STREAM_PEER_NOISE,
    STREAM_REFINER_NOISE,
    STREAM_RESIDUAL_SCALE,
    STREAM_SKELETON_CHECK,
)


def run_skeleton(skeleton: torch.nn.Module, u: torch.Tensor) -> torch.Tensor:
    """The skeleton on a batch of pairs: ``U`` with its neighbours when the sampler gave them,
    repeated to the skeleton's input channels when it did not (:mod:`skelem.models.context`)."""
    return skeleton(repeat_channels(u, input_channels(skeleton)))


def _batch(
    sampler: PairSampler, batch_size: int, keys: tuple[int, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of pairs drawn from the stream ``keys`` (e.g. ``(seed, step)``)."""
    u, p = sampler.sample(batch_size, rng=numpy_rng(*keys))
    return torch.from_numpy(u).to(device), torch.from_numpy(p).to(device)


def skeleton_step(sampler: PairSampler, cfg: ExperimentConfig, device: torch.device) -> StepLoss:
    """``U -> P`` with a fidelity + SSIM loss (Stage 1; ``cfg.skeleton_loss``).

    Parameters
    ----------
    sampler : PairSampler
        Training pairs of the volume.
    cfg : ExperimentConfig
        Uses ``skeleton_training`` (batch size, seed) and ``skeleton_loss``.
    device : torch.device

    Returns
    -------
    StepLoss
        ``step_loss(model, step)`` for :func:`skelem.training.loop.train_stage`.
    """
    tcfg = cfg.skeleton_training
    loss = SKELETON_LOSSES[cfg.skeleton_loss]

    def step_loss(model: torch.nn.Module, step: int) -> torch.Tensor:
        u, p = _batch(sampler, tcfg.batch_size, (tcfg.seed, step), device)
        return loss(model(repeat_channels(u, input_channels(model))), p)

    return step_loss


def _t_max(cfg: ExperimentConfig) -> int:
    """The refiner only ever runs at ``t <= t0``; it trains on ``t`` in ``1..min(T, 2*t0)``."""
    return min(cfg.diffusion.timesteps, 2 * cfg.diffusion.t0)


def residual_rms(
    sampler: PairSampler,
    skeleton: torch.nn.Module,
    cfg: ExperimentConfig,
    device: torch.device,
    batches: int = 8,
) -> float:
    """RMS of the residual ``P - S(U)`` over a few training batches (the refiner's residual scale).

    Parameters
    ----------
    sampler : PairSampler
        Training pairs of the volume.
    skeleton : torch.nn.Module
        The trained (frozen) skeleton.
    cfg : ExperimentConfig
        Uses ``refiner_training`` (batch size, seed).
    device : torch.device
    batches : int
        Number of batches to average over.

    Returns
    -------
    float
        The RMS in normalised intensity units, at least ``1e-3``.
    """
    tcfg = cfg.refiner_training
    keys = (tcfg.seed, STREAM_RESIDUAL_SCALE)
    total, _, count = _squared_errors(sampler, skeleton, tcfg.batch_size, keys, device, batches)
    return max(float(np.sqrt(total / max(count, 1))), 1e-3)


def _squared_errors(
    sampler: PairSampler,
    skeleton: torch.nn.Module,
    batch_size: int,
    keys: tuple[int, int],
    device: torch.device,
    batches: int,
) -> tuple[float, float, int]:
    """Sums of ``(S(U) - P)^2`` and ``(U - P)^2`` over ``batches`` batches, and the pixel count.

    Batch ``b`` is drawn from the stream ``(keys[0], b, keys[1])`` (a seed and a stream tag).
    """
    err_skel, err_cubic, count = 0.0, 0.0, 0
    with torch.no_grad():
        for b in range(batches):
            u, p = _batch(sampler, batch_size, (keys[0], b, keys[1]), device)
            err_skel += float(((run_skeleton(skeleton, u) - p).double() ** 2).sum())
            err_cubic += float(((u[:, :1] - p).double() ** 2).sum())
            count += p.numel()
    return err_skel, err_cubic, count


def skeleton_error_ratio(
    sampler: PairSampler,
    skeleton: torch.nn.Module,
    cfg: ExperimentConfig,
    device: torch.device,
    batches: int = 8,
) -> float:
    """Mean squared error of the skeleton over that of its cubic input, on fresh training pairs.

    Below 1 the skeleton improves on cubic interpolation; near 1 its training collapsed towards
    the identity correction (seen at x8 with some seeds, ``benchmarks/RESULTS.md``).

    Parameters
    ----------
    sampler : PairSampler
        Training pairs of the volume.
    skeleton : torch.nn.Module
        The trained skeleton.
    cfg : ExperimentConfig
        Uses ``skeleton_training`` (batch size, seed).
    device : torch.device
    batches : int
        Number of batches.

    Returns
    -------
    float
        ``MSE(S(U), P) / MSE(U, P)``.
    """
    tcfg = cfg.skeleton_training
    keys = (tcfg.seed, STREAM_SKELETON_CHECK)
    err_skel, err_cubic, _ = _squared_errors(
        sampler, skeleton, tcfg.batch_size, keys, device, batches
    )
    return err_skel / max(err_cubic, 1e-12)


def refiner_step(
    sampler: PairSampler,
    skeleton: torch.nn.Module,
    cfg: ExperimentConfig,
    device: torch.device,
    residual_scale: float = 1.0,
) -> StepLoss:
    """Denoising objective on the residual ``r = (P - S(U)) / residual_scale`` (Stage 2).

    Conditioned on ``[S(U), U]``. The skeleton runs under ``no_grad``: it never sees this loss
    (training-signal decoupling).

    Parameters
    ----------
    sampler : PairSampler
        Training pairs of the volume.
    skeleton : torch.nn.Module
        The trained (frozen) skeleton.
    cfg : ExperimentConfig
        Uses ``refiner_training`` and ``diffusion``.
    device : torch.device
    residual_scale : float
        The residual's RMS (:func:`residual_rms`); the refiner diffuses the residual divided by it.

    Returns
    -------
    StepLoss
        ``step_loss(model, step)`` for :func:`skelem.training.loop.train_stage`.
    """
    tcfg = cfg.refiner_training
    schedule = NoiseSchedule.from_config(cfg.diffusion)

    def step_loss(model: torch.nn.Module, step: int) -> torch.Tensor:
        u, p = _batch(sampler, tcfg.batch_size, (tcfg.seed, step), device)
        with torch.no_grad():
            skel = run_skeleton(skeleton, u)
        u = u[:, :1]
        gen = torch_generator(tcfg.seed, step, STREAM_REFINER_NOISE)
        return _refiner_loss(model, schedule, (p - skel) / residual_scale, skel, u, cfg, gen)

    return step_loss


def _refiner_loss(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    residual: torch.Tensor,
    skel: torch.Tensor,
    u: torch.Tensor,
    cfg: ExperimentConfig,
    gen: torch.Generator,
) -> torch.Tensor:
    """The refiner's denoising loss on ``x_0 = residual``, conditioned on ``(S(U), U)``."""
    return denoising_loss(
        model, schedule, residual, (skel, u), gen, _t_max(cfg), cfg.diffusion.prediction
    )


def peer_step(sampler: PairSampler, cfg: ExperimentConfig, device: torch.device) -> StepLoss:
    """Pure-diffusion baseline: generate the whole slice ``P`` from noise, conditioned on ``U``.

    Parameters
    ----------
    sampler : PairSampler
        Training pairs of the volume.
    cfg : ExperimentConfig
        Uses ``refiner_training`` (the peer trains with the refiner's budget) and ``diffusion``.
    device : torch.device

    Returns
    -------
    StepLoss
        ``step_loss(model, step)`` for :func:`skelem.training.loop.train_stage`.
    """
    tcfg, dcfg = cfg.refiner_training, cfg.diffusion
    schedule = NoiseSchedule.from_config(dcfg)

    def step_loss(model: torch.nn.Module, step: int) -> torch.Tensor:
        u, p = _batch(sampler, tcfg.batch_size, (tcfg.seed + 1, step), device)
        gen = torch_generator(tcfg.seed, step, STREAM_PEER_NOISE)
        cond = (u[:, :1],)  # the interpolant alone: neighbours are the skeleton's input
        return denoising_loss(model, schedule, p, cond, gen, dcfg.timesteps, dcfg.prediction)

    return step_loss


class CrossPlaneSampler:
    """Sub-volumes of the real (normalised) volume for the LR->HR->LR and XZ/YZ cycles.

    Parameters
    ----------
    volume : numpy.ndarray
        ``(Z, Y, X)`` acquired volume, normalised.
    factor : int
        Anisotropy factor.
    size : int
        Lateral size (Y and X) of a sub-volume.
    rows : int
        Output rows (interpolated Z) of a sub-volume.

    Raises
    ------
    ValueError
        The volume is too small for sub-volumes of this size.
    """

    def __init__(self, volume: np.ndarray, factor: int, size: int, rows: int) -> None:
        self.volume, self.factor, self.size, self.rows = volume, factor, size, rows
        z, y, x = volume.shape
        self.in_rows = (rows - 1) // factor + 1 + 4  # acquired slices needed, with cubic context
        if y < size or x < size or z < self.in_rows:
            raise ValueError("volume too small for the cross-plane cycle")

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """An interpolated sub-volume ``(rows, size, size)`` whose row 0 is a measured row.

        Parameters
        ----------
        rng : numpy.random.Generator
            Chooses the sub-volume's position.

        Returns
        -------
        sub : numpy.ndarray
            ``(rows, size, size)`` cubic-interpolated along Z.
        start : int
            Row of the interpolated block where ``sub`` starts (a multiple of ``factor``).
        """
        z, y, x = self.volume.shape
        z0 = int(rng.integers(0, z - self.in_rows + 1))
        y0 = int(rng.integers(0, y - self.size + 1))
        x0 = int(rng.integers(0, x - self.size + 1))
        block = self.volume[z0 : z0 + self.in_rows, y0 : y0 + self.size, x0 : x0 + self.size]
        interp = upsample(block, self.factor, axis=0, method="cubic")
        start = 2 * self.factor  # skip the interpolation context; still a measured row
        return interp[start : start + self.rows], start


def _slice_texture(x: torch.Tensor) -> torch.Tensor:
    """Per-row lateral and per-column axial gradient energies of ``(B, 1, H, W)`` slices."""
    return torch.cat(
        [row_texture_energy(x).flatten(1), row_texture_energy(x.transpose(-1, -2)).flatten(1)], 1
    )


def _row_texture_3d(volume: torch.Tensor) -> torch.Tensor:
    """``(Z, Y, X) -> (Z,)``: mean lateral gradient energy (along X and along Y) of every row."""
    along_x = row_texture_energy(volume).mean(dim=-1)
    along_y = row_texture_energy(volume.transpose(-1, -2)).mean(dim=-1)
    return 0.5 * (along_x + along_y)


def alignment_step(
    sampler: PairSampler,
    cross: CrossPlaneSampler | None,
    skeleton: torch.nn.Module,
    cfg: ExperimentConfig,
    device: torch.device,
    residual_scale: float = 1.0,
) -> StepLoss:
    """Bidirectional alignment of the refiner through the truncated sampler (Stage 3.3).

    With ``blur`` a Gaussian of ``cfg.alignment.structure_sigma`` pixels and ``E`` gradient
    energies (:func:`skelem.training.losses.row_texture_energy`), the loss is::

        w_hr     * L1(blur(HR->LR->HR output), blur(real XY patch))           structure
      + w_tex    * |log E(output) - log E(patch)|  per row (lateral) and per column (axial)
      + w_anchor * the Stage 2 denoising loss on the same XY patches
      + w_lr     * L1(LR->HR->LR: restored cross-plane slices, re-degraded along Z, vs acquired)
      + w_agree  * L1(blur(XZ-pass), blur(YZ-pass)) on the same real sub-volume
      + w_tex    * |log E(fused row) - log E(acquired rows)|  for every row between acquired ones

    The structure terms see blurred images, so they no longer pull the sampled texture to the
    conditional mean (raw L1 did: it removed the refiner's detail); the texture terms ask the few
    sampling steps for the real texture energy, and the last one asks every restored row for the
    texture of the acquired rows of the same volume (Z stationarity) without any ground truth.
    The XZ and YZ passes start from one noise volume, as at inference (voxel-keyed noise).
    Only the refiner is optimised.

    Parameters
    ----------
    sampler : PairSampler
        Training pairs of the volume.
    cross : CrossPlaneSampler or None
        Real sub-volumes for the cross-plane terms (``None``: XY cycles only).
    skeleton : torch.nn.Module
        The trained (frozen) skeleton.
    cfg : ExperimentConfig
        Uses ``alignment_training``, ``alignment``, ``diffusion`` and ``degradation.factor``.
    device : torch.device
    residual_scale : float
        The refiner's residual scale.

    Returns
    -------
    StepLoss
        ``step_loss(model, step)`` for :func:`skelem.training.loop.train_stage`.
    """
    tcfg, acfg = cfg.alignment_training, cfg.alignment
    schedule = NoiseSchedule.from_config(cfg.diffusion)
    factor = cfg.degradation.factor
    sigma = acfg.structure_sigma

    def settings(consistency: bool) -> RefineSettings:
        d = cfg.diffusion
        return RefineSettings(
            schedule=schedule,
            timesteps=truncated_timesteps(d.t0, d.steps),
            prediction=d.prediction,
            residual_scale=residual_scale,
            use_consistency=consistency,
            prior_attenuation=d.prior_attenuation,
        )

    def step_loss(model: torch.nn.Module, step: int) -> torch.Tensor:
        gen = torch_generator(tcfg.seed, step, STREAM_ALIGNMENT_NOISE)
        rng = numpy_rng(tcfg.seed, step, STREAM_ALIGNMENT_PATCHES)
        # HR -> LR -> HR on real lateral patches (measured rows known from the degradation phase)
        u, p, rows = sampler.sample(tcfg.batch_size, rng=rng, return_rows=True)
        u, p = torch.from_numpy(u).to(device), torch.from_numpy(p).to(device)
        mask = torch.from_numpy(np.asarray(rows)[0, 0, :, 0]).to(device)
        with torch.no_grad():
            skel = run_skeleton(skeleton, u)
        u = u[:, :1]
        noise = torch.randn(u.shape, generator=gen).to(device)
        out = skel + refine_residual(model, u, skel, mask, noise, settings(True))
        loss = acfg.hr_weight * F.l1_loss(gaussian_blur(out, sigma), gaussian_blur(p, sigma))
        if acfg.texture_weight > 0:
            loss = loss + acfg.texture_weight * texture_log_ratio(
                _slice_texture(out), _slice_texture(p)
            )
        if acfg.anchor_weight > 0:
            anchor_gen = torch_generator(tcfg.seed, step, STREAM_ALIGNMENT_ANCHOR)
            residual = (p - skel) / residual_scale
            anchor = _refiner_loss(model, schedule, residual, skel, u, cfg, anchor_gen)
            loss = loss + acfg.anchor_weight * anchor
        if cross is None:
            return loss
        sub, _ = cross.sample(rng)
        sub_t = torch.from_numpy(np.ascontiguousarray(sub)).to(device)
        noise3 = torch.randn(sub.shape, generator=gen).to(device)  # one noise volume, both passes
        row_mask = measured_rows_mask(sub.shape[0], factor, device=device)
        passes = []
        for perm in ((1, 0, 2), (2, 0, 1)):  # XZ slices (y, z, x), YZ slices (x, z, y)
            uu = sub_t.permute(*perm)[:, None]
            with torch.no_grad():  # neighbours: the adjacent slices of the sub-volume
                sk = skeleton(with_neighbours(uu, skeleton_context(skeleton)))
            nn_ = noise3.permute(*perm)[:, None]
            out = sk + refine_residual(model, uu, sk, row_mask, nn_, settings(False))
            # LR -> HR -> LR: re-degrade along Z (keep measured rows) and compare with acquisition
            loss = loss + acfg.lr_weight * 0.5 * F.l1_loss(out[:, :, row_mask], uu[:, :, row_mask])
            passes.append(out[:, 0])
        xz, yz = passes[0].permute(1, 0, 2), passes[1].permute(1, 2, 0)  # both (rows, y, x)
        loss = loss + acfg.agree_weight * F.l1_loss(
            gaussian_blur(xz, sigma, (0, 1, 2)), gaussian_blur(yz, sigma, (0, 1, 2))
        )
        if acfg.texture_weight > 0 and bool((~row_mask).any()):
            fused = 0.5 * (xz + yz)
            acquired = _row_texture_3d(sub_t[row_mask]).mean()
            between = _row_texture_3d(fused)[~row_mask]
            loss = loss + acfg.texture_weight * texture_log_ratio(
                between, acquired.expand_as(between)
            )
        return loss

    return step_loss
