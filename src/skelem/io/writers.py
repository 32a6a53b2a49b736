"""Write volumes with their voxel size, atomically: TIFF (ImageJ), OME-Zarr (NGFF 0.4/0.5), HDF5,
NPY.

Every output is first written under a hidden sibling name (``.{name}.partial-<pid>``) and renamed
to its final name only once complete, so an interrupted run never leaves a truncated file that
looks finished; the next write of the same output deletes the temporary siblings that killed
runs left (:func:`skelem.atomic.remove_stale_partials`). Streaming writers
(:func:`create_ome_zarr`) follow the same rule with :func:`partial_path` and :func:`commit_output`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skelem.atomic import commit_output, partial_path, remove_stale_partials
from skelem.atomic import remove_path as _remove
from skelem.errors import InputError, OutputExistsError
from skelem.io.ngff import NGFF_VERSIONS, image_attrs
from skelem.io.readers import HDF5_SUFFIXES, SUPPORTED_DTYPES, TIFF_SUFFIXES
from skelem.io.sidecar import write_npy_sidecar
from skelem.io.units import check_voxel_size, convert_length, imagej_unit, normalize_unit
from skelem.io.volume import Volume

logger = logging.getLogger(__name__)

DEFAULT_H5_DATASET = "data"
_IMAGEJ_DTYPES = (np.dtype("uint8"), np.dtype("uint16"), np.dtype("int16"), np.dtype("float32"))


def restored_voxel_size(
    voxel_size: Sequence[float] | None, factor: int
) -> tuple[float, float, float] | None:
    """Voxel size of a volume restored by ``factor`` along Z: ``(z / factor, y, x)``.

    Parameters
    ----------
    voxel_size : sequence of float, optional
        ``(z, y, x)`` of the acquired volume; ``None`` stays ``None`` (unknown voxel size).
    factor : int
        Anisotropy factor.

    Returns
    -------
    tuple of float or None
    """
    if voxel_size is None:
        return None
    z, y, x = (float(v) for v in voxel_size)
    return (z / factor, y, x)


# ---------------------------------------------------------------------------------- atomicity


def check_output(path: str | Path, overwrite: bool = False) -> Path:
    """Raise unless ``path`` can be written: its folder exists, and it is new or ``overwrite``.

    Parameters
    ----------
    path : str or Path
        The output.
    overwrite : bool
        Whether an existing output may be replaced.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        When the folder does not exist.
    OutputExistsError
        When ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"The output folder {path.parent} does not exist.")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it.")
    return path


def _write_atomically(path: Path, overwrite: bool, write: Callable[[Path], None]) -> None:
    check_output(path, overwrite)
    partial = partial_path(path)
    _remove(partial)
    remove_stale_partials(path)  # the temporary files of killed writes of the same output
    try:
        write(partial)
        commit_output(partial, path, overwrite)
    except BaseException:
        _remove(partial)
        raise


# -------------------------------------------------------------------------------------- write


def write_volume(
    path: str | Path,
    data: Any,
    voxel_size: Sequence[float] | None,
    unit: str | None = "micrometer",
    overwrite: bool = False,
    metadata: dict | None = None,
    *,
    version: str = "0.4",
    chunks: Sequence[int] | None = None,
) -> str:
    """Write a ``(Z, Y, X)`` volume with its voxel size; the format follows the extension.

    Parameters
    ----------
    path : str or Path
        ``out.tif``/``.tiff`` (ImageJ hyperstack, calibrated in Fiji), ``out.zarr``/
        ``out.ome.zarr`` (OME-Zarr with a multiscale pyramid,
        :func:`skelem.io.pyramid.build_pyramid`),
        ``out.h5``/``.hdf5`` optionally with ``:/dataset`` (default ``/data``), or
        ``out.npy`` (no metadata).
    data : array-like or Volume
        The volume, shape ``(Z, Y, X)``; loaded into memory.
    voxel_size : tuple of float or None
        Physical voxel size ``(z, y, x)`` in ``unit``; ``None`` when unknown.
    unit : str or None
        Unit of ``voxel_size`` (``micrometer``, ``nanometer``, ``um``...).
    overwrite : bool
        Replace an existing output; otherwise :class:`~skelem.errors.OutputExistsError`.
    metadata : dict, optional
        JSON-serialisable SkelEM metadata (e.g. the experiment config). Stored as ImageJ ``Info``
        (TIFF), ``attrs["skelem"]`` (zarr) or a JSON string attribute ``skelem`` (HDF5); read back
        as :attr:`Volume.metadata <skelem.io.volume.Volume.metadata>`.
    version : {"0.4", "0.5"}
        OME-NGFF version for zarr outputs (0.4: zarr format 2; 0.5: zarr format 3).
    chunks : tuple of int, optional
        Zarr chunk shape; default up to ``(16, 256, 256)``.

    Returns
    -------
    str
        The written URI (with ``:/dataset`` for HDF5), ready for :func:`open_volume`.

    Notes
    -----
    An HDF5 output is a whole file written atomically: an existing file is replaced (with
    ``overwrite``), never appended to. bool data is stored as uint8, and int64/uint64 as uint32
    or int32 when the values fit. The ImageJ format holds uint8, uint16, int16 and float32:
    float64 is stored as float32, and uint32/int8/int32 go to a plain TIFF with the voxel size
    in its JSON description, as do single-slice and 1-pixel-wide volumes (tifffile's ImageJ
    files would read back without their Z axis or with pages missing).
    """
    array = data.read() if isinstance(data, Volume) else np.asarray(data)
    if array.ndim != 3:
        raise InputError(f"Cannot write {path}: the data has shape {array.shape}, not (Z, Y, X).")
    array = _storable(array, path)
    voxel = None if voxel_size is None else check_voxel_size(voxel_size, str(path))
    unit_name = normalize_unit(unit, strict=False)
    text = str(path)
    file_part, dataset = _split_hdf5(text)
    suffix = Path(file_part).suffix.lower()
    if suffix in HDF5_SUFFIXES:
        target = Path(file_part)
        name = "/" + (dataset or DEFAULT_H5_DATASET).strip("/")
        _write_atomically(
            target, overwrite, lambda p: _write_hdf5(p, name, array, voxel, unit_name, metadata)
        )
        return f"{target}:{name}"
    check_output_format(text)
    target = Path(text)
    if suffix in TIFF_SUFFIXES:
        writer: Callable[[Path], None] = lambda p: _write_tiff(p, array, voxel, unit_name, metadata)  # noqa: E731
    elif suffix == ".zarr":
        if version not in NGFF_VERSIONS:
            raise InputError(f"OME-NGFF version {version!r} is not supported; use 0.4 or 0.5.")
        writer = lambda p: _write_zarr(p, array, voxel, unit_name, metadata, version, chunks)  # noqa: E731
    else:
        writer = lambda p: _write_npy(p, array, voxel, metadata, target)  # noqa: E731
    _write_atomically(target, overwrite, writer)
    return str(target)


def check_output_format(path: str | Path) -> None:
    """Refuse, before any work, an output whose extension SkelEM cannot write.

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.tiff``, ``.zarr``/``.ome.zarr``, ``.npy``, or ``.h5``/``.hdf5``/``.hdf``
        optionally followed by ``:/dataset``.

    Raises
    ------
    InputError
        An unknown extension, or a ``:/dataset`` part on a non-HDF5 output.
    """
    text = str(path)
    file_part, dataset = _split_hdf5(text)
    suffix = Path(file_part).suffix.lower()
    if suffix in HDF5_SUFFIXES:
        return
    if dataset is not None:
        raise InputError(f"Only HDF5 outputs take a ':/dataset' part, not {text}.")
    if suffix not in (*TIFF_SUFFIXES, ".zarr", ".npy"):
        raise InputError(
            f"Cannot write {text}: unknown extension {suffix or '(none)'}; use .tif, .zarr, "
            ".h5 or .npy."
        )


def _storable(array: np.ndarray, path: str | Path) -> np.ndarray:
    """``array`` in a supported data type: bool -> uint8, 64-bit integers narrowed when they fit."""
    if array.dtype in SUPPORTED_DTYPES:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype in (np.dtype("int64"), np.dtype("uint64")):
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        for candidate in (np.uint32, np.int32):
            limits = np.iinfo(candidate)
            if limits.min <= low and high <= limits.max:
                return array.astype(candidate)
        raise InputError(
            f"Cannot write {path}: its 64-bit integer values ({low}..{high}) do not fit in 32 bits."
        )
    raise InputError(f"Cannot write {path}: data type {array.dtype} is not supported.")


def _split_hdf5(text: str) -> tuple[str, str | None]:
    lowered = text.lower()
    for suffix in HDF5_SUFFIXES:
        at = lowered.find(suffix + ":")
        if at >= 0:
            return text[: at + len(suffix)], text[at + len(suffix) + 1 :]
    return text, None


def _metadata_json(metadata: dict | None) -> str | None:
    if metadata is None:
        return None
    return json.dumps(metadata, default=str)


def _fits_rational(value: float) -> bool:
    """Whether ``value`` can be a TIFF RATIONAL (two unsigned 32-bit integers) to ~6 digits."""
    limit = 2.0**32 - 1
    return 1e6 / limit <= value <= limit


def _write_tiff(
    path: Path,
    array: np.ndarray,
    voxel: tuple[float, float, float] | None,
    unit: str | None,
    metadata: dict | None,
) -> None:
    import tifffile

    if array.dtype == np.float64:
        logger.info("ImageJ TIFF holds float32: writing %s as float32", path)
        array = array.astype(np.float32)
    info = _metadata_json(None if metadata is None else {"skelem": metadata})
    # tifffile's ImageJ files lose the Z axis of a single slice (it reads back 2-D) and the
    # pages of a 1-pixel-wide stack: those shapes go to the plain TIFF below, which keeps them.
    if array.dtype in _IMAGEJ_DTYPES and array.shape[0] > 1 and array.shape[2] > 1:
        ij: dict[str, Any] = {"axes": "ZYX"}
        kwargs: dict[str, Any] = {}
        if voxel is not None:
            ij["spacing"] = voxel[0]
            ij["unit"] = imagej_unit(unit) or "pixel"
            if _fits_rational(1.0 / voxel[2]) and _fits_rational(1.0 / voxel[1]):
                kwargs["resolution"] = (1.0 / voxel[2], 1.0 / voxel[1])  # tifffile: (X, Y)
        if info is not None:
            ij["Info"] = info
        if array.dtype == np.float32 and array.size:
            # the display range Fiji applies to the whole stack (else it scales to the slice shown)
            ij["min"], ij["max"] = float(np.nanmin(array)), float(np.nanmax(array))
        tifffile.imwrite(path, array, imagej=True, metadata=ij, **kwargs)
        return
    # ImageJ cannot hold this type or shape: a plain TIFF with the voxel size in its JSON
    # description.
    shaped: dict[str, Any] = {"axes": "ZYX"}
    kwargs = {}
    if voxel is not None:
        shaped["voxel_size"] = list(voxel)
        shaped["unit"] = unit or "pixel"
        per_cm = [convert_length(v, unit, "centimeter") for v in voxel[1:]]  # (y, x)
        # the resolution tags are 32-bit rationals: pixels per cm outside 2^-32..2^32 (a voxel
        # under ~2 pm or over ~40 km) cannot be written; the description above keeps the size
        if all(v is not None and _fits_rational(1.0 / v) for v in per_cm):
            kwargs = {
                "resolution": (1.0 / per_cm[1], 1.0 / per_cm[0]),  # tifffile: (X, Y)
                "resolutionunit": "CENTIMETER",
            }
    if metadata is not None:
        shaped["skelem"] = json.loads(_metadata_json(metadata) or "null")
    tifffile.imwrite(path, array, metadata=shaped, photometric="minisblack", **kwargs)


def _output_name(path: Path) -> str:
    """The name of the final output (without the partial prefix/suffix and the zarr extension)."""
    name = Path(path).name
    match = re.fullmatch(r"\.?(.+?)\.partial(?:-\d+)?", name)
    name = match.group(1) if match else name
    for suffix in (".ome.zarr", ".zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _default_chunks(shape: Sequence[int]) -> tuple[int, int, int]:
    z, y, x = (int(n) for n in shape)
    return (min(z, 16), min(y, 256), min(x, 256))


def create_ome_zarr(
    path: str | Path,
    shape: Sequence[int],
    dtype: Any,
    chunks: Sequence[int] | None,
    voxel_size: Sequence[float] | None,
    unit: str | None = "micrometer",
    metadata: dict | None = None,
    version: str = "0.4",
    overwrite: bool = False,
) -> Any:
    """Create an empty single-scale OME-Zarr at ``path`` and return its level-0 array for writing.

    Parameters
    ----------
    path : str or Path
        Where to create the store, usually :func:`partial_path` of the final output; the caller
        fills the array (block by block) and then calls :func:`commit_output`.
    shape : tuple of int
        ``(Z, Y, X)``.
    dtype : dtype-like
        Data type of the array (filled with 0 until written).
    chunks : tuple of int or None
        Chunk shape; default up to ``(16, 256, 256)``.
    voxel_size : tuple of float or None
        ``(z, y, x)`` in ``unit``; ``None`` writes a unit-less scale of 1.
    unit : str or None
        OME-NGFF unit name (``micrometer``...), or an alias such as ``um``.
    metadata : dict, optional
        JSON-serialisable SkelEM metadata, stored as ``attrs["skelem"]`` of the group.
    version : {"0.4", "0.5"}
        NGFF 0.4 (zarr format 2) or 0.5 (zarr format 3).
    overwrite : bool
        Replace a store already at ``path``; otherwise :class:`OutputExistsError`.

    Returns
    -------
    zarr.Array
        The array ``"0"`` of the new group.
    """
    import zarr

    if version not in NGFF_VERSIONS:
        raise InputError(f"OME-NGFF version {version!r} is not supported; use 0.4 or 0.5.")
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(f"Cannot create {path}: shape {shape} is not a (Z, Y, X) volume.")
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise InputError(f"Cannot create {path}: data type {dtype} is not supported.")
    path = check_output(path, overwrite)
    voxel = None if voxel_size is None else check_voxel_size(voxel_size, str(path))
    unit_name = normalize_unit(unit, strict=False)
    if path.exists():
        _remove(path)
    chunk_shape = tuple(int(c) for c in chunks) if chunks is not None else _default_chunks(shape)
    zarr_format = 2 if version == "0.4" else 3
    group = zarr.open_group(str(path), mode="w-", zarr_format=zarr_format)
    extra = {"dimension_names": ("z", "y", "x")} if zarr_format == 3 else {}
    array = group.create_array(
        "0", shape=shape, dtype=dtype, chunks=chunk_shape, fill_value=0, **extra
    )
    attrs = image_attrs(voxel, unit_name, version, name=_output_name(path))
    if metadata is not None:
        attrs["skelem"] = json.loads(_metadata_json(metadata) or "null")
    group.attrs.update(attrs)
    return array


def _write_zarr(
    path: Path,
    array: np.ndarray,
    voxel: tuple[float, float, float] | None,
    unit: str | None,
    metadata: dict | None,
    version: str,
    chunks: Sequence[int] | None,
) -> None:
    from skelem.io.pyramid import build_pyramid

    target = create_ome_zarr(path, array.shape, array.dtype, chunks, voxel, unit, metadata, version)
    target[...] = array
    build_pyramid(path)


def _write_hdf5(
    path: Path,
    name: str,
    array: np.ndarray,
    voxel: tuple[float, float, float] | None,
    unit: str | None,
    metadata: dict | None,
) -> None:
    import errno
    import os
    import shutil

    import h5py

    # HDF5 reports a full disk as a RuntimeError when the file is closed and again, as an
    # unraisable error, when the half-closed file is collected: refuse it before writing.
    if shutil.disk_usage(path.parent).free < array.nbytes + 2**16:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    try:
        with h5py.File(path, "w") as handle:
            dataset = handle.create_dataset(name, data=array)
            if voxel is not None:
                dataset.attrs["voxel_size"] = np.asarray(voxel, dtype=np.float64)
                dataset.attrs["unit"] = unit or "pixel"
                in_um = [convert_length(v, unit, "micrometer") for v in voxel]
                if all(v is not None for v in in_um):
                    dataset.attrs["element_size_um"] = np.asarray(in_um, dtype=np.float64)
            if metadata is not None:
                dataset.attrs["skelem"] = _metadata_json(metadata)
    except RuntimeError as err:
        if "errno = 28" in str(err):  # the space went between the check and the write
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise


def _write_npy(
    path: Path,
    array: np.ndarray,
    voxel: tuple[float, float, float] | None,
    metadata: dict | None,
    final: Path | None = None,
) -> None:
    """Write ``array`` to ``path``; with ``metadata``, its provenance goes to a JSON sidecar
    beside the final output ``final`` (:func:`skelem.io.sidecar.write_npy_sidecar`),
    written atomically before the NPY file is renamed to ``final``."""
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
    if metadata is not None and final is not None:
        write_npy_sidecar(final, path, metadata)
    elif voxel is not None:
        logger.info("%s: .npy files store no voxel size", final or path)
