"""A generic, resumable training loop shared by every stage (skeleton, refiner, peer, alignment).

The loop owns the optimiser, learning-rate schedule, EMA, checkpoints and progress events; a stage
only provides a function computing the loss of step ``i``. Batches are drawn from generators seeded
by ``(seed, step)``, so a run resumed from a checkpoint sees exactly the batches an uninterrupted
run would have seen.

The EMA and the schedule are written out rather than taken from ``torch.optim``. The EMA warms up
(decay ``min(decay, (1 + step) / (10 + step))``, its first update a blend with the initial weights),
which ``AveragedModel`` with ``get_ema_multi_avg_fn`` (fixed decay, first update a copy) does not:
the saved weights would change. ``LambdaLR`` computes ``lr * ((step + 1) / warmup)``, one float64
ulp away from ``lr * (step + 1) / warmup`` at some warm-up steps.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from skelem.atomic import atomic_path
from skelem.config.models import TrainingConfig
from skelem.errors import ModelError
from skelem.events import ProgressCallback, ProgressEvent, no_progress
from skelem.models.device import cpu_fast_layout
from skelem.seeds import derive_seed
from skelem.training.streams import STREAM_TRAINING_STEP

log = logging.getLogger(__name__)

StepLoss = Callable[[torch.nn.Module, int], torch.Tensor]


class EMA:
    """Exponential moving average of a model's parameters (the weights that get saved).

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained; a frozen copy in eval mode becomes :attr:`model`.
    decay : float
        Decay once warmed up; step ``i`` uses ``min(decay, (1 + i) / (10 + i))``.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        """Blend ``model``'s parameters into the average after step ``step``; copy its buffers.

        Parameters
        ----------
        model : torch.nn.Module
            The model being trained (same architecture).
        step : int
            The 0-based step just taken.
        """
        decay = min(self.decay, (1 + step) / (10 + step))  # warm-up: follow closely at first
        for ema_p, p in zip(self.model.parameters(), model.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)


def _lr_at(step: int, cfg: TrainingConfig) -> float:
    warmup = max(1, min(100, cfg.iterations // 20))
    if step < warmup:
        return cfg.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, cfg.iterations - warmup)
    return cfg.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def _save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # serialised in memory first: torch.save to a full disk fails with a RuntimeError from its
    # zip writer ("unexpected pos"); a plain write reports it as an OSError (ENOSPC)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def _load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any failure means an unusable file
        raise ModelError(
            f"The training checkpoint {path} is corrupt or unreadable ({err.__class__.__name__}); "
            "delete it to start this stage again."
        ) from None


def train_stage(
    name: str,
    model: torch.nn.Module,
    step_loss: StepLoss,
    cfg: TrainingConfig,
    checkpoint_path: Path | None = None,
    progress: ProgressCallback = no_progress,
    parameters: list[torch.nn.Parameter] | None = None,
) -> torch.nn.Module:
    """Train ``model`` for ``cfg.iterations`` steps and return the EMA model (eval mode).

    Parameters
    ----------
    name : str
        Stage name, used for progress events (``task=name``) and messages.
    model : torch.nn.Module
        The network to train (trained in place).
    step_loss : callable
        ``step_loss(model, step) -> scalar loss``; must draw its batch from a generator seeded by
        ``step``.
    cfg : TrainingConfig
        Iterations, learning rate, EMA decay, checkpoint interval and seed.
    checkpoint_path : Path, optional
        Where a resumable checkpoint (model, EMA, optimiser, step) is written every
        ``cfg.checkpoint_every`` steps. When it exists, training continues from it.
    progress : ProgressCallback
        Receives one event per step (``loss``, ``it/s``).
    parameters : list, optional
        Parameters to optimise (default: all of ``model``'s).

    Returns
    -------
    torch.nn.Module
        The EMA copy of ``model`` (eval mode, no gradients); ``model`` itself is left in eval mode.

    Raises
    ------
    ModelError
        The loss is not finite, or the checkpoint is corrupt or made for another network.
    """
    cpu_fast_layout(model)  # before the optimiser and the EMA copy see its parameters
    params = parameters
    if params is None:
        params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=1e-4)
    ema = EMA(model, cfg.ema_decay)
    start = 0
    if checkpoint_path is not None and checkpoint_path.exists():
        state = _load_checkpoint(checkpoint_path)
        try:
            model.load_state_dict(state["model"])
            ema.model.load_state_dict(state["ema"])
            optimizer.load_state_dict(state["optimizer"])
            start = int(state["step"])
        except (KeyError, RuntimeError, ValueError):
            raise ModelError(
                f"The training checkpoint {checkpoint_path} does not match the configured {name} "
                "network; delete it or use the configuration it was made with."
            ) from None
        log.info("%s: resuming at step %d from %s", name, start, checkpoint_path)
    model.train()
    t_start, done_since = time.perf_counter(), 0
    for step in range(start, cfg.iterations):
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, cfg)
        torch.manual_seed(derive_seed(cfg.seed, step, STREAM_TRAINING_STEP))
        loss = step_loss(model, step)
        if not torch.isfinite(loss):
            raise ModelError(
                f"The {name} loss became {loss.item()} at step {step}; lower the learning rate."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ema.update(model, step)
        done_since += 1
        elapsed = max(time.perf_counter() - t_start, 1e-9)
        metrics = {"loss": float(loss.detach()), "it/s": done_since / elapsed}
        progress(ProgressEvent(name, step + 1, cfg.iterations, metrics))
        last = step + 1 == cfg.iterations
        if checkpoint_path is not None and ((step + 1) % cfg.checkpoint_every == 0 or last):
            _save_checkpoint(
                checkpoint_path,
                {
                    "model": model.state_dict(),
                    "ema": ema.model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": step + 1,
                    "stage": name,
                },
            )
    if start >= cfg.iterations:
        progress(ProgressEvent(name, cfg.iterations, cfg.iterations, {}))
    model.eval()
    return ema.model
