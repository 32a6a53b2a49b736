"""The napari reader: TIFF, HDF5 (``file.h5:/dataset``), NPY and OME-Zarr with their voxel size.

OME-Zarr is left to a dedicated reader (``napari-ome-zarr``) where one is installed, which shows
every pyramid level; without one SkelEM opens level 0.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skelem.errors import SkelEMError
from skelem.io import open_volume
from skelem.napari._layers import volume_layer

LayerData = list[tuple[Any, dict, str]]

_SUFFIXES = (".tif", ".tiff", ".npy", ".zarr", ".h5", ".hdf5", ".hdf")
_HDF5 = (".h5", ".hdf5", ".hdf")


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], LayerData] | None:
    """napari's reader hook: a function that opens ``path``, or None when SkelEM should not.

    Parameters
    ----------
    path : str or list of str
        What napari was asked to open.

    Returns
    -------
    callable or None
    """
    paths = [path] if isinstance(path, str) else list(path)
    if not paths or not all(_claims(str(p)) for p in paths):
        return None
    return read_layers


def read_layers(path: str | list[str]) -> LayerData:
    """Open every path as an image layer whose scale is its voxel size.

    Parameters
    ----------
    path : str or list of str
        TIFF, NPY, OME-Zarr, ``file.h5:/dataset`` or a whole ``file.h5`` (every 3-D dataset).

    Returns
    -------
    list of tuple
        napari layer-data tuples.

    Raises
    ------
    SkelEMError
        A path cannot be read as a 3-D volume (one sentence).
    """
    paths = [path] if isinstance(path, str) else list(path)
    layers: LayerData = []
    for item in map(str, paths):
        if _whole_hdf5(item):
            for dataset in hdf5_volumes(item):
                layers.append(volume_layer(open_volume(dataset), Path(dataset).name))
        else:
            layers.append(volume_layer(open_volume(item), _layer_name(item)))
    return layers


def hdf5_volumes(path: str, limit: int = 16) -> list[str]:
    """``file.h5:/name`` of the 3-D datasets of an HDF5 file (at most ``limit``).

    Parameters
    ----------
    path : str
        The HDF5 file.
    limit : int
        Datasets listed at most.

    Returns
    -------
    list of str

    Raises
    ------
    SkelEMError
        The file holds no 3-D dataset.
    """
    import h5py

    found: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.ndim == 3 and len(found) < limit:
            found.append(f"{path}:/{name}")

    with h5py.File(path, "r") as handle:
        handle.visititems(visit)
    if not found:
        raise SkelEMError(f"{path} holds no 3-D dataset to open.")
    return found


def _claims(path: str) -> bool:
    """Whether SkelEM opens ``path`` (not OME-Zarr when a dedicated reader is installed)."""
    lower = path.lower().rstrip("/")
    base = lower.split(":/")[0] if any(f"{s}:" in lower for s in _HDF5) else lower
    if not base.endswith(_SUFFIXES):
        return False
    if base.endswith(".zarr"):
        return importlib.util.find_spec("napari_ome_zarr") is None
    return True


def _whole_hdf5(path: str) -> bool:
    return path.lower().endswith(_HDF5) and Path(path).is_file()


def _layer_name(path: str) -> str:
    if any(f"{s}:" in path.lower() for s in _HDF5):
        return path.rsplit("/", 1)[-1]
    name = Path(path.rstrip("/")).name
    for suffix in (".ome.zarr", ".ome.tif", ".ome.tiff", *_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
