"""napari sample data: the embedded FIB-SEM crop as a x4 anisotropic stack."""

from __future__ import annotations

from typing import Any

from skelem.io import open_volume
from skelem.io.volume import Volume
from skelem.napari._layers import volume_layer
from skelem.sample_data import ATTRIBUTION, sample_path

#: every SAMPLE_FACTOR-th slice of the isotropic crop is kept
SAMPLE_FACTOR = 4


def fibsem_x4() -> list[tuple[Any, dict, str]]:
    """The embedded FIB-SEM crop, every 4th slice kept: 25 x 125 x 160 voxels of 40 x 10 x 10 nm.

    Returns
    -------
    list of tuple
        One image layer-data tuple whose scale is the x4 voxel size (micrometer).
    """
    iso = open_volume(sample_path())
    z, y, x = iso.voxel_size or (1.0, 1.0, 1.0)
    stack = Volume(
        data=iso.read()[::SAMPLE_FACTOR],
        voxel_size=(z * SAMPLE_FACTOR, y, x),
        unit=iso.unit,
        source=f"{sample_path().name} (every {SAMPLE_FACTOR}th slice)",
    )
    data, kwargs, kind = volume_layer(stack, f"FIB-SEM x{SAMPLE_FACTOR}")
    kwargs["metadata"]["attribution"] = ATTRIBUTION
    return [(data, kwargs, kind)]
