"""The embedded demo volume (a small attributed FIB-SEM crop, see ATTRIBUTION.md)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLE_NAME = "fibsem_medulla_crop.tif"
ATTRIBUTION = (
    "FIB-SEM sample: Janelia FlyEM (neuroproof_examples), CC-BY; cite Takemura et al. 2015, PNAS."
)


def sample_path() -> Path:
    """Path of the embedded isotropic FIB-SEM crop (97 x 125 x 160 voxels, 10 nm, uint8).

    Returns
    -------
    Path
        The TIFF inside the installed package.
    """
    return Path(str(resources.files(__package__) / SAMPLE_NAME))
