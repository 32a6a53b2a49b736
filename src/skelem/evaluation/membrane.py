"""Downstream membrane segmentation: a membrane predictor trained once on an isotropic reference.

The predictor is a small 2-D U-Net trained on XY, XZ and YZ slices of an isotropic training volume
whose instance labels give the membrane target (label boundaries). It is never trained on the
volume it evaluates. Applied to a restored volume (mean of its XY, XZ and YZ passes), then a seeded
watershed gives instances, scored against ground-truth labels with VI and adapted Rand error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.segmentation import find_boundaries

from skelem.atomic import write_text_atomic
from skelem.config.models import NetworkConfig, TrainingConfig
from skelem.data.normalize import PercentileNormalizer
from skelem.errors import ModelError
from skelem.events import ProgressCallback, no_progress
from skelem.models.unet import UNet2D, pad_to_multiple
from skelem.training.loop import train_stage

NET = NetworkConfig(channels=8, depth=3)


def membrane_target(labels: np.ndarray) -> np.ndarray:
    """1 on label boundaries (3-D, 'inner' mode: about 2 voxels wide), 0 inside objects.

    Parameters
    ----------
    labels : np.ndarray
        Instance labels ``(Z, Y, X)``.

    Returns
    -------
    np.ndarray
        float32, same shape.
    """
    return find_boundaries(labels, mode="inner").astype(np.float32)


#: :func:`restoration_augment`'s ranges (chosen before any scoring, not tuned): blur sigma in
#: pixels along one axis, noise std in normalised units (the 1st-99th percentile range is 1)
AUGMENT_BLUR = (0.5, 2.5)
AUGMENT_NOISE = (0.0, 0.08)


def restoration_augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A training patch made to look like a restoration: each of two changes with probability
    1/2, drawn from ``rng``: a Gaussian blur along one random axis (sigma uniform in
    :data:`AUGMENT_BLUR`; a restored XZ/YZ slice is smoother along Z than a measured one), then
    Gaussian noise (std uniform in :data:`AUGMENT_NOISE`; sampled detail is grainy).

    Parameters
    ----------
    x : np.ndarray
        Normalised 2-D patch.
    rng : np.random.Generator
        The step's generator (so training stays reproducible and resumable).

    Returns
    -------
    np.ndarray
        float32, same shape (``x`` itself when neither change is drawn).
    """
    blur, noise = rng.random() < 0.5, rng.random() < 0.5
    axis, sigma = int(rng.integers(2)), float(rng.uniform(*AUGMENT_BLUR))
    std = float(rng.uniform(*AUGMENT_NOISE))
    if blur:
        x = ndimage.gaussian_filter1d(np.asarray(x, np.float32), sigma, axis=axis, mode="reflect")
    if noise:
        x = x + rng.normal(0.0, std, size=x.shape).astype(np.float32)
    return np.asarray(x, np.float32)


class MembranePredictor:
    """Maps a normalised isotropic volume ``(Z, Y, X)`` to a membrane probability in ``[0, 1]``."""

    def __init__(self, model: UNet2D, normalizer: PercentileNormalizer) -> None:
        self.model, self.normalizer = model.eval(), normalizer

    @classmethod
    def train(
        cls,
        image: np.ndarray,
        labels: np.ndarray,
        iterations: int = 600,
        patch: int = 96,
        batch: int = 8,
        seed: int = 0,
        progress: ProgressCallback = no_progress,
        augment: bool = False,
    ) -> MembranePredictor:
        """Train on ``image`` (isotropic, any dtype) and its instance ``labels`` (same shape).

        Parameters
        ----------
        image : np.ndarray
            Isotropic training volume ``(Z, Y, X)``.
        labels : np.ndarray
            Its instance labels; the target is their boundaries (:func:`membrane_target`).
        iterations : int
            Training steps.
        patch : int
            Side of the 2-D training patches (capped by the volume).
        batch : int
            Patches per step.
        seed : int
            Seed of the weights and the patch draws.
        progress : ProgressCallback
            Receives the training events.
        augment : bool
            Show the predictor restoration-like inputs as well (:func:`restoration_augment`:
            half the patches blurred along one in-plane axis, half with added noise; the target
            is unchanged), so that restored volumes, smoother or grainier along Z than the
            isotropic truth it learns from, are not outside what it has seen.

        Returns
        -------
        MembranePredictor
            With the EMA weights.
        """
        normalizer = PercentileNormalizer.fit(image)
        vol = normalizer.normalize(image)
        target = membrane_target(labels)
        pos_weight = float((1 - target.mean()) / max(target.mean(), 1e-3))
        torch.manual_seed(seed)
        model = UNet2D(1, 1, channels=NET.channels, depth=NET.depth)
        shape = np.array(vol.shape)
        size = int(min(patch, *shape) // NET.multiple * NET.multiple)

        def step_loss(net: torch.nn.Module, step: int) -> torch.Tensor:
            rng = np.random.default_rng([seed, step])
            xs, ys = [], []
            for _ in range(batch):
                axis = int(rng.integers(3))
                img, tgt = np.moveaxis(vol, axis, 0), np.moveaxis(target, axis, 0)
                i = int(rng.integers(img.shape[0]))
                a = int(rng.integers(img.shape[1] - size + 1))
                b = int(rng.integers(img.shape[2] - size + 1))
                x, y = img[i, a : a + size, b : b + size], tgt[i, a : a + size, b : b + size]
                if rng.random() < 0.5:
                    x, y = x[::-1], y[::-1]
                if rng.random() < 0.5:
                    x, y = x.T, y.T
                if augment:
                    x = restoration_augment(x, rng)
                xs.append(np.ascontiguousarray(x))
                ys.append(np.ascontiguousarray(y))
            xb = torch.from_numpy(np.stack(xs))[:, None]
            yb = torch.from_numpy(np.stack(ys))[:, None]
            logits = net(xb)
            return F.binary_cross_entropy_with_logits(logits, yb,
                                                      pos_weight=torch.tensor(pos_weight))

        cfg = TrainingConfig(iterations=iterations, batch_size=batch, patch_size=max(16, size),
                             learning_rate=2e-3, checkpoint_every=iterations, seed=seed)
        ema = train_stage("train-membrane", model, step_loss, cfg, None, progress)
        return cls(ema, normalizer)

    @torch.inference_mode()
    def predict(self, image: np.ndarray, normalized: bool = False) -> np.ndarray:
        """Membrane probability ``(Z, Y, X)`` float32: mean of the XY, XZ and YZ slice passes.

        Parameters
        ----------
        image : np.ndarray
            Volume ``(Z, Y, X)`` in input units (or normalised).
        normalized : bool
            ``image`` is already normalised (skip the saved normaliser).

        Returns
        -------
        np.ndarray
            float32 in ``[0, 1]``, same shape.
        """
        vol = image.astype(np.float32) if normalized else self.normalizer.normalize(image)
        out = np.zeros(vol.shape, np.float32)
        for axis in range(3):
            slices = np.ascontiguousarray(np.moveaxis(vol, axis, 0))
            pred = np.empty_like(slices)
            for start in range(0, slices.shape[0], 16):
                x = torch.from_numpy(slices[start : start + 16])[:, None]
                xp, (h, w) = pad_to_multiple(x, NET.multiple)
                pred[start : start + 16] = torch.sigmoid(self.model(xp))[:, 0, :h, :w].numpy()
            out += np.moveaxis(pred, 0, axis)
        return out / 3.0


def save_membrane_predictor(predictor: MembranePredictor, directory: str | Path) -> Path:
    """Write ``membrane.safetensors`` and ``membrane.json`` (normaliser) into ``directory``.

    Parameters
    ----------
    predictor : MembranePredictor
        The trained predictor.
    directory : str or Path
        Created when missing.

    Returns
    -------
    Path
        ``directory``.
    """
    from skelem.models.factory import save_weights

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_weights(predictor.model, directory / "membrane.safetensors")
    payload = {"format": "skelem-membrane", "network": NET.model_dump(),
               "normalizer": predictor.normalizer.to_dict()}
    write_text_atomic(directory / "membrane.json", json.dumps(payload, indent=2))
    return directory


def load_membrane_predictor(directory: str | Path) -> MembranePredictor:
    """Load a predictor saved by :func:`save_membrane_predictor`.

    Parameters
    ----------
    directory : str or Path
        The folder holding ``membrane.json`` and ``membrane.safetensors``.

    Returns
    -------
    MembranePredictor

    Raises
    ------
    ModelError
        When the folder does not hold a usable predictor.
    """
    from skelem.models.factory import load_weights

    directory = Path(directory)
    try:
        payload = json.loads((directory / "membrane.json").read_text())
        normalizer = PercentileNormalizer.from_dict(payload["normalizer"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelError(
            f"{directory} is not a membrane predictor saved by `skelem benchmark`."
        ) from None
    model = UNet2D(1, 1, channels=NET.channels, depth=NET.depth)
    load_weights(model, directory / "membrane.safetensors")
    return MembranePredictor(model, normalizer)
