"""Network loading for restoration: which stored network a method runs, its alignment and halo."""

from __future__ import annotations

import numpy as np
import torch

from skelem.errors import ModelError
from skelem.inference.backends import DEFAULT_BACKEND, prepare_network, source_network
from skelem.models.artifact import ModelArtifact
from skelem.models.unet import measured_receptive_field


def load_networks(
    artifact: ModelArtifact,
    names: tuple[str, ...],
    device: torch.device,
    aligned: bool = True,
    backend: str = DEFAULT_BACKEND,
) -> dict[str, torch.nn.Module]:
    """Load the networks ``names`` of ``artifact`` onto ``device``, in eval mode, for ``backend``.

    Parameters
    ----------
    artifact : ModelArtifact
        The trained model.
    names : tuple of str
        ``skeleton``, ``refiner`` and/or ``diffusion_peer``.
    device : torch.device
        Where the networks run.
    aligned : bool
        False: the refiner from before the alignment stage (ablation).
    backend : str
        How the networks run (:data:`skelem.inference.backends.BACKENDS`); each comes back wrapped
        in a :class:`~skelem.inference.backends.NetworkRunner` whose ``source`` is the network.

    Returns
    -------
    dict of str to torch.nn.Module

    Raises
    ------
    ModelError
        The unaligned refiner is asked for but alignment did not run.
    """
    nets: dict[str, torch.nn.Module] = {}
    for name in names:
        stored = "refiner_unaligned" if name == "refiner" and not aligned else name
        if stored == "refiner_unaligned" and not artifact.has(stored):
            raise ModelError(
                f"The model in {artifact.directory} has no refiner from before alignment "
                "(alignment did not run)."
            )
        nets[name] = prepare_network(artifact.load_network(stored, device), backend, device)
    return nets


def network_geometry(artifact: ModelArtifact, nets: dict[str, torch.nn.Module]) -> tuple[int, int]:
    """The size multiple every network accepts and their summed receptive-field radius.

    Parameters
    ----------
    artifact : ModelArtifact
        The model whose config gives each network's depth.
    nets : dict of str to torch.nn.Module
        The networks a method chains (from :func:`load_networks`).

    Returns
    -------
    align : int
        The largest ``2**depth`` of the networks.
    radius : int
        The summed measured receptive-field radius ``r`` in voxels (plus the skeleton's
        neighbouring slices on each side), rounded to the halo
        ``ceil((r + 1) / align) * align``.
    """
    cfg = artifact.config
    multiples = {
        "skeleton": cfg.skeleton.multiple,
        "refiner": cfg.refiner.multiple,
        "diffusion_peer": cfg.diffusion_peer.multiple,
    }
    align = max(multiples[n] for n in nets)
    radius = sum(
        int(measured_receptive_field(source_network(net), multiples[n], with_time=n != "skeleton"))
        for n, net in nets.items()
    )
    if "skeleton" in nets:  # its neighbouring slices reach along the other lateral axis
        radius += cfg.skeleton.context
    return align, int(np.ceil((radius + 1) / align) * align)
