"""Volumes to napari layer-data tuples and back (no Qt here)."""

from __future__ import annotations

from typing import Any

import numpy as np

from skelem.io import Volume

#: napari's default scale: a layer with it carries no voxel size
UNIT_SCALE = (1.0, 1.0, 1.0)


def lazy_array(data: Any) -> Any:
    """``data`` as something napari displays: numpy arrays and memory maps as they are, other
    lazy arrays (zarr, h5py, SkelEM's axis views) wrapped in a dask array read on demand.

    Parameters
    ----------
    data : array-like
        ``(Z, Y, X)`` with ``shape``, ``dtype`` and slicing.

    Returns
    -------
    array-like
    """
    if isinstance(data, np.ndarray):
        return data
    import dask.array as da

    return da.from_array(data, chunks=(1, *data.shape[1:]), asarray=True, fancy=False)


def volume_layer(volume: Volume, name: str) -> tuple[Any, dict, str]:
    """The napari image layer-data tuple of ``volume``: its data, scale and unit.

    Parameters
    ----------
    volume : Volume
        An opened ``(Z, Y, X)`` volume.
    name : str
        Layer name.

    Returns
    -------
    tuple
        ``(data, kwargs, "image")``; ``kwargs["scale"]`` is the voxel size ``(z, y, x)``
        (absent when unknown), ``kwargs["units"]`` its unit.
    """
    kwargs: dict[str, Any] = {
        "name": name,
        "metadata": {"skelem_source": volume.source, "skelem_unit": volume.unit},
    }
    if volume.voxel_size is not None:
        kwargs["scale"] = tuple(float(v) for v in volume.voxel_size)
        kwargs["units"] = (volume.unit,) * 3
        kwargs["metadata"]["skelem_voxel_size"] = kwargs["scale"]
    return lazy_array(volume.data), kwargs, "image"


def layer_voxel_size(scale: Any) -> tuple[float, float, float] | None:
    """The voxel size a 3-D layer's scale states, or None for napari's default ``(1, 1, 1)``.

    Parameters
    ----------
    scale : sequence of float
        The layer's scale ``(z, y, x)``.

    Returns
    -------
    tuple of float or None
    """
    values = tuple(float(v) for v in scale)
    if len(values) != 3 or np.allclose(values, UNIT_SCALE):
        return None
    return values  # type: ignore[return-value]
