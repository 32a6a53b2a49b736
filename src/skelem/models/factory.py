"""Building the three networks from their configs, and saving/loading weights as safetensors."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from skelem.atomic import atomic_path
from skelem.config.models import NetworkConfig
from skelem.errors import ModelError
from skelem.models.unet import UNet2D


def build_skeleton(cfg: NetworkConfig) -> UNet2D:
    """The skeleton ``S_θ``: interpolated slice ``U`` -> ``U`` + correction.

    Its input is ``U`` and, with ``cfg.context = k``, the ``2k`` neighbouring slices
    (:mod:`skelem.models.context`): ``2k + 1`` channels, ``U`` first.

    Parameters
    ----------
    cfg : NetworkConfig
        Base channels, depth and context.

    Returns
    -------
    UNet2D
        Residual on its input, identity at initialisation.
    """
    return UNet2D(
        2 * cfg.context + 1, 1, channels=cfg.channels, depth=cfg.depth, residual_input=True
    )


def build_refiner(cfg: NetworkConfig) -> UNet2D:
    """The refiner ``R_φ``: channels ``[x_t residual, S_θ(U), U]`` and a timestep -> 1 channel.

    Parameters
    ----------
    cfg : NetworkConfig
        Base channels and depth.

    Returns
    -------
    UNet2D
    """
    return UNet2D(3, 1, channels=cfg.channels, depth=cfg.depth, time_embedding=True)


def build_diffusion_peer(cfg: NetworkConfig) -> UNet2D:
    """The pure-diffusion peer: channels ``[x_t image, U]`` and a timestep -> 1 channel.

    Parameters
    ----------
    cfg : NetworkConfig
        Base channels and depth.

    Returns
    -------
    UNet2D
    """
    return UNet2D(2, 1, channels=cfg.channels, depth=cfg.depth, time_embedding=True)


def save_weights(
    model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None
) -> None:
    """Write ``model.state_dict()`` to a safetensors file atomically (:mod:`skelem.atomic`).

    Parameters
    ----------
    model : nn.Module
    path : str or Path
        Destination, conventionally ``*.safetensors``.
    metadata : dict of str, optional
        Free-form string metadata stored in the file header.
    """
    from safetensors.torch import save

    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    # serialised in memory, then written: safetensors' own writer reports a full disk as a
    # SafetensorError, a plain write as an OSError (ENOSPC) that the CLI says in one sentence
    data = save(tensors, metadata=metadata)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _shape(shape: tuple[int, ...] | torch.Size) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load safetensors weights into ``model`` (in place, on the model's device) and return it.

    Parameters
    ----------
    model : nn.Module
        A network built with the configuration the weights were saved from.
    path : str or Path
        The safetensors file.

    Returns
    -------
    nn.Module
        ``model``.

    Raises
    ------
    ModelError
        The file is missing or not a readable safetensors file, or its tensors do not match the
        model's parameter names and shapes (e.g. a different ``channels`` or ``depth``).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Weights file {path} does not exist.")
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelError(
            f"Weights file {path} is corrupt or not a safetensors file ({err.__class__.__name__})."
        ) from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    detail = None
    if missing:
        detail = f"{len(missing)} tensor(s) missing, e.g. {missing[0]!r}"
    elif unexpected:
        detail = f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]!r}"
    else:
        for name, tensor in expected.items():
            if tuple(state[name].shape) != tuple(tensor.shape):
                detail = (
                    f"{name!r} has shape {_shape(state[name].shape)}, "
                    f"expected {_shape(tensor.shape)}"
                )
                break
    if detail is not None:
        raise ModelError(
            f"Weights file {path} does not match the configured network ({detail}); "
            "check the channels and depth settings."
        )
    model.load_state_dict(state, strict=True)
    return model
