"""Pretrained EM models shipped in the package (``skelem/pretrained_models/fibsem_x<factor>``).

Each is a slim model folder (manifest, config, safetensors weights) trained once, for long, on
isotropic FIB-SEM the headline benchmark never scores (see its ``PROVENANCE.md``). They restore a
volume without training (``skelem restore VOLUME -o OUT`` with no ``--model``) and are the start
of ``skelem train --init pretrained``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from skelem.errors import ModelError

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained_models"
#: Environment variable naming another folder of pretrained models (``fibsem_x<factor>``).
PRETRAINED_ENV = "SKELEM_PRETRAINED_DIR"
#: How a pretrained model normalises a volume it restores zero-shot: by the volume's own
#: intensity percentiles (the model's are another acquisition's). ``skelem restore`` without
#: ``--model``, napari's pretrained source and the benchmark's pretrained rows all use it.
PRETRAINED_NORMALIZE = "input"
_NAME = re.compile(r"^fibsem_x(\d+)$")


def pretrained_root() -> Path:
    """The folder holding the pretrained models: ``$SKELEM_PRETRAINED_DIR`` or the package's.

    Returns
    -------
    Path
    """
    return Path(os.environ.get(PRETRAINED_ENV) or PRETRAINED_DIR)


def pretrained_factors() -> list[int]:
    """Anisotropy factors with a shipped pretrained model, ascending.

    Returns
    -------
    list of int
    """
    root = pretrained_root()
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _NAME.match(child.name)
        if match and (child / "skelem-model.json").is_file():
            found.append(int(match.group(1)))
    return sorted(found)


def pretrained_model_dir(factor: int) -> Path:
    """The folder of the pretrained model for ``factor``.

    Parameters
    ----------
    factor : int
        Integer anisotropy factor.

    Returns
    -------
    Path

    Raises
    ------
    ModelError
        No pretrained model exists for this factor (one sentence listing those that do).
    """
    factors = pretrained_factors()
    if int(factor) not in factors:
        have = ", ".join(f"x{f}" for f in factors) or "none"
        raise ModelError(
            f"There is no pretrained model for factor {factor} (shipped: {have}); train one with "
            "`skelem train VOLUME -o MODEL_DIR` and pass --model MODEL_DIR."
        )
    return pretrained_root() / f"fibsem_x{int(factor)}"
