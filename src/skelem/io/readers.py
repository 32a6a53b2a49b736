"""Open a volume from TIFF (ImageJ, OME), OME-Zarr (NGFF 0.4/0.5), HDF5 or NPY, lazily.

``open_volume`` returns a :class:`~skelem.io.volume.Volume` whose ``data`` is a lazy array
(memory map, zarr array, h5py dataset or :class:`~skelem.io.lazy.AxisView`): nothing is read
until it is indexed. Every problem the user can fix raises :class:`~skelem.errors.InputError`
with a one-sentence message.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from skelem.errors import InputError, SkelEMError
from skelem.io._meta import Meta, as_str, json_dict
from skelem.io.lazy import AxisView
from skelem.io.tiff_reader import open_tiff
from skelem.io.units import check_voxel_size, convert_length, normalize_unit
from skelem.io.volume import Volume

logger = logging.getLogger(__name__)

#: Data types SkelEM reads; anything else (bool, complex, object, 64-bit ints...) is refused.
SUPPORTED_DTYPES = tuple(
    np.dtype(t)
    for t in ("uint8", "uint16", "uint32", "int8", "int16", "int32", "float32", "float64")
)

TIFF_SUFFIXES = (".tif", ".tiff")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
_HDF5_URI = re.compile(r"^(?P<file>.+?\.(?:h5|hdf5|hdf))(?::(?P<dataset>.*))?$", re.IGNORECASE)
_FORMAT_NAMES = {".tif": "TIFF", ".tiff": "TIFF", ".npy": "NumPy"} | dict.fromkeys(
    HDF5_SUFFIXES, "HDF5"
)
_ZARR_MARKERS = (".zgroup", ".zarray", ".zattrs", "zarr.json")


def open_volume(
    uri: str | Path,
    voxel_size: tuple[float, float, float] | None = None,
    unit: str | None = None,
    level: int = 0,
) -> Volume:
    """Open a 3-D volume lazily with its voxel size.

    Parameters
    ----------
    uri : str or Path
        ``stack.tif``, ``volume.ome.zarr`` (or a zarr array inside it), ``file.h5:/path/to/dataset``
        (also ``.hdf5``/``.hdf``), or ``volume.npy``.
    voxel_size : tuple of float, optional
        Physical voxel size ``(z, y, x)``; overrides the file's metadata.
    unit : str, optional
        Unit of the voxel size (``micrometer``, ``um``, ``nm``...). Given alone, the file's voxel
        size is converted to it; given with ``voxel_size``, it labels that voxel size. Default:
        the file's unit, else micrometer.
    level : int
        Resolution level of a multiscale OME-Zarr or pyramidal TIFF (0 = full resolution).

    Returns
    -------
    Volume
        ``data`` has shape ``(Z, Y, X)`` and is not loaded; singleton channel/time axes are
        dropped.

    Raises
    ------
    InputError
        Missing or unreadable file, unknown format, missing HDF5 dataset, a volume that is not
        3-D (or has several channels/time points), or an unsupported data type.
    """
    text = str(uri)
    path = Path(text)
    dataset: str | None = None
    if not path.exists():
        match = _HDF5_URI.match(text)
        if match and match.group("dataset") is not None and Path(match.group("file")).exists():
            path, dataset = Path(match.group("file")), match.group("dataset")
        else:
            missing = match.group("file") if match else text
            raise InputError(f"{missing} does not exist.")
    if level < 0:
        raise InputError(f"The resolution level must be 0 or more, got {level}.")

    suffix = path.suffix.lower()
    try:
        if path.is_dir() or suffix == ".zarr":
            data, meta = _open_zarr(path, level)
        elif suffix in TIFF_SUFFIXES:
            data, meta = open_tiff(path, level)
        elif suffix in HDF5_SUFFIXES:
            data, meta = _open_hdf5(path, dataset)
            text = f"{path}:{_h5_name(dataset or '')}"
        elif suffix == ".npy":
            data, meta = _open_npy(path)
        else:
            raise InputError(
                f"{path} has an unsupported format ({suffix or 'no extension'}); use a TIFF "
                "(.tif), OME-Zarr (.zarr), HDF5 (file.h5:/dataset) or NumPy (.npy) volume."
            )
    except SkelEMError:
        raise
    except Exception as err:  # any library failure on a damaged or foreign file
        logger.debug("failed to open %s", path, exc_info=True)
        raise InputError(
            f"{path} could not be read as {_FORMAT_NAMES.get(suffix, 'zarr')} "
            f"({type(err).__name__}); it may be damaged or in another format."
        ) from None
    if level and suffix in (".npy", *HDF5_SUFFIXES):
        raise InputError(f"{text} has a single resolution level, so level {level} does not exist.")

    try:
        check_array(data, text)
    except InputError:
        _close(data)
        raise
    file_voxel, file_unit, metadata = meta
    voxel, final_unit = _resolve_voxel_size(voxel_size, unit, file_voxel, file_unit, text)
    return Volume(
        data=data,
        voxel_size=voxel,
        unit=final_unit,
        source=text,
        axes="ZYX",
        metadata=metadata,
    )


def check_array(data: Any, source: str) -> None:
    """Raise :class:`InputError` unless ``data`` is 3-D with a supported data type.

    Parameters
    ----------
    data : array-like
        Anything with ``.shape`` and ``.dtype``.
    source : str
        Named in the error message.
    """
    shape = tuple(int(n) for n in data.shape)
    if len(shape) != 3:
        raise InputError(f"{source} has shape {shape}; a (Z, Y, X) volume is needed.")
    if 0 in shape:
        raise InputError(f"{source} is empty (shape {shape}).")
    dtype = np.dtype(data.dtype)
    if dtype not in SUPPORTED_DTYPES:
        names = ", ".join(d.name for d in SUPPORTED_DTYPES)
        raise InputError(
            f"{source} has data type {dtype}, which SkelEM does not read; use one of {names}."
        )


def _resolve_voxel_size(
    voxel_size: Any,
    unit: str | None,
    file_voxel: tuple[float, float, float] | None,
    file_unit: str | None,
    source: str,
) -> tuple[tuple[float, float, float] | None, str]:
    """Combine explicit arguments with file metadata (arguments win)."""
    wanted = normalize_unit(unit) if unit is not None else None
    if voxel_size is not None:
        return check_voxel_size(voxel_size, source), wanted or file_unit or "micrometer"
    if file_voxel is None:
        return None, wanted or file_unit or "micrometer"
    if wanted and file_unit and wanted != file_unit:
        converted = [convert_length(v, file_unit, wanted) for v in file_voxel]
        if any(v is None for v in converted):
            raise InputError(
                f"{source} has its voxel size in {file_unit}, which cannot be converted to "
                f"{wanted}; pass the voxel size explicitly."
            )
        return tuple(converted), wanted  # type: ignore[return-value]
    return file_voxel, wanted or file_unit or "pixel"


# --------------------------------------------------------------------------------------- TIFF


def _open_zarr(path: Path, level: int) -> tuple[Any, Meta]:
    import zarr

    if not any((path / marker).exists() for marker in _ZARR_MARKERS):
        raise InputError(f"{path} is not a zarr store (no .zgroup, .zarray or zarr.json inside).")
    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        parent = _parent_multiscales(path)
        if parent is not None:
            multiscales, index = parent
            if level:
                raise InputError(
                    f"{path} is one resolution level; open the multiscale group for level {level}."
                )
            return _open_multiscale_level(node, multiscales, index, path)
        names = node.metadata.dimension_names if node.metadata.zarr_format == 3 else None
        if names and all(names) and len(names) == node.ndim:
            axes = [{"name": str(n).lower()} for n in names]
            return _select_ngff_axes(node, axes, path), (None, None, _attrs_skelem(node.attrs))
        if level:
            raise InputError(f"{path} is a single zarr array, so level {level} does not exist.")
        return node, (None, None, _attrs_skelem(node.attrs))
    multiscales = _multiscales(node.attrs)
    if multiscales is None:
        arrays = sorted(name for name, _ in node.arrays())
        hint = f" (arrays inside: {', '.join(arrays[:8])})" if arrays else ""
        raise InputError(
            f"{path} is a zarr group without OME-NGFF multiscales metadata; open one of its "
            f"arrays{hint}."
        )
    datasets = multiscales.get("datasets") or []
    if level >= len(datasets):
        raise InputError(
            f"{path} has {len(datasets)} resolution level(s); level {level} does not exist."
        )
    array = node[datasets[level]["path"]]
    data, (voxel, unit, _) = _open_multiscale_level(array, multiscales, level, path)
    return data, (voxel, unit, _attrs_skelem(node.attrs))


def _multiscales(attrs: Any) -> dict | None:
    """The first ``multiscales`` entry of NGFF 0.4 (top level) or 0.5 (under ``ome``) attributes.

    Parsed by ``ome-zarr-models`` (:func:`skelem.io.ngff.read_multiscales`), leniently when the
    library refuses it (NGFF 0.3 and older).
    """
    from skelem.io.ngff import read_multiscales

    return read_multiscales(attrs)


def _parent_multiscales(path: Path) -> tuple[dict, int] | None:
    """When ``path`` is one level of a multiscale group: the group's multiscales and level index."""
    import zarr

    parent = path.resolve().parent
    if not any((parent / marker).exists() for marker in _ZARR_MARKERS):
        return None
    try:
        group = zarr.open_group(str(parent), mode="r")
    except Exception:
        return None
    multiscales = _multiscales(group.attrs)
    if multiscales is None:
        return None
    for index, dataset in enumerate(multiscales.get("datasets") or []):
        if str(dataset.get("path")) == path.name:
            return multiscales, index
    return None


def _open_multiscale_level(
    array: Any, multiscales: dict, level: int, path: Path
) -> tuple[Any, Meta]:
    axes = multiscales.get("axes")
    if axes is None:  # NGFF <= 0.3: the last three axes are z, y, x
        axes = [{"name": n} for n in ("t", "c", "z", "y", "x")[-array.ndim :]]
    axes = [{"name": a} if isinstance(a, str) else dict(a) for a in axes]
    if len(axes) != array.ndim:
        raise InputError(f"{path} declares {len(axes)} axes for a {array.ndim}-D array.")
    scale = np.ones(array.ndim)
    for transforms in (
        multiscales["datasets"][level].get("coordinateTransformations") or [],
        multiscales.get("coordinateTransformations") or [],
    ):
        for transform in transforms:
            if transform.get("type") == "scale" and "scale" in transform:
                scale = scale * np.asarray(transform["scale"], dtype=float)
    data = _select_ngff_axes(array, axes, path)
    names = [str(a.get("name", "")).lower() for a in axes]
    if not all(n in names for n in "zyx"):
        return data, (None, None, None)
    index = [names.index(n) for n in "zyx"]
    units = {normalize_unit(axes[i].get("unit"), strict=False) for i in index}
    unit = next(iter(units)) if len(units) == 1 else None
    if len(units) > 1:
        logger.warning("%s has different units on z, y and x; voxel size taken as unitless", path)
    voxel = tuple(float(scale[i]) for i in index)
    try:
        voxel = check_voxel_size(voxel, str(path))
    except InputError:
        return data, (None, None, None)
    if unit is None and voxel == (1.0, 1.0, 1.0):
        return data, (None, None, None)  # the placeholder scale of an uncalibrated image
    return data, (voxel, unit or "pixel", None)


def _select_ngff_axes(array: Any, axes: list[dict], path: Path) -> Any:
    names = [str(a.get("name", "")).lower() for a in axes]
    if not all(n in names for n in "zyx"):
        return array  # e.g. a 2-D image: check_array reports the shape
    spatial = (names.index("z"), names.index("y"), names.index("x"))
    extra = {names[i]: int(array.shape[i]) for i in range(array.ndim) if i not in spatial}
    if any(n > 1 for n in extra.values()):
        described = ", ".join(f"{k}={v}" for k, v in extra.items())
        raise InputError(
            f"{path} has non-spatial axes with several entries ({described}); SkelEM needs a "
            "single-channel (Z, Y, X) volume, so write one channel or time point per file."
        )
    if spatial == (0, 1, 2) and array.ndim == 3:
        return array
    return AxisView(array, spatial, {i: 0 for i in range(array.ndim) if i not in spatial})


def _attrs_skelem(attrs: Any) -> dict | None:
    value = dict(attrs).get("skelem")
    return value if isinstance(value, dict) else None


# --------------------------------------------------------------------------------------- HDF5


def _h5_name(dataset: str) -> str:
    return "/" + dataset.strip("/")


def _h5_datasets(group: Any, limit: int = 8) -> list[str]:
    import h5py

    found: list[str] = []

    def visit(name: str, obj: Any) -> Any:
        if isinstance(obj, h5py.Dataset):
            found.append(_h5_name(name) if group.name == "/" else f"{group.name}/{name}")
        return True if len(found) >= limit else None

    group.visititems(visit)
    return found


def _h5_listing(group: Any) -> str:
    names = _h5_datasets(group)
    return ", ".join(names) if names else "none"


def _open_hdf5(path: Path, dataset: str | None) -> tuple[Any, Meta]:
    import h5py

    handle = h5py.File(path, "r")  # stays open while the dataset is used (it holds a reference)
    try:
        if not dataset or dataset.strip("/") == "":
            raise InputError(
                f"{path} is an HDF5 file, so name the dataset as {path}:/path/to/dataset "
                f"(datasets: {_h5_listing(handle)})."
            )
        name = _h5_name(dataset)
        if name not in handle:
            raise InputError(f"{path} has no dataset {name} (datasets: {_h5_listing(handle)}).")
        obj = handle[name]
        if not isinstance(obj, h5py.Dataset):
            raise InputError(
                f"{path}:{name} is an HDF5 group, not a dataset (datasets inside: "
                f"{_h5_listing(obj)})."
            )
        return obj, _h5_metadata(obj, path)
    except BaseException:
        handle.close()
        raise


def _h5_metadata(dataset: Any, path: Path) -> Meta:
    """Voxel size from ``voxel_size`` + ``unit`` (SkelEM), ``element_size_um``, or ``resolution``.

    ``resolution`` is in nm (CREMI).
    """
    attrs = dataset.attrs
    metadata = json_dict(attrs.get("skelem"))
    candidates: list[tuple[str, str | None]] = [
        ("voxel_size", as_str(attrs.get("unit"))),
        ("element_size_um", "micrometer"),
        ("resolution", "nanometer"),
    ]
    for key, unit in candidates:
        if key in attrs:
            try:
                voxel = check_voxel_size(np.asarray(attrs[key]).ravel().tolist(), f"{path}")
            except InputError:
                continue
            return voxel, normalize_unit(unit, strict=False) or "pixel", metadata
    return None, None, metadata


# ---------------------------------------------------------------------------------------- NPY


def _open_npy(path: Path) -> tuple[Any, Meta]:
    with open(path, "rb") as handle:
        if handle.read(6) != b"\x93NUMPY":
            raise ValueError("not a .npy file")
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        if "object" in str(err).lower() or "pickle" in str(err).lower():
            raise InputError(f"{path} holds Python objects, not a numeric volume.") from None
        raise
    return data, (None, None, None)


# ------------------------------------------------------------------------------------ helpers


def _close(data: Any) -> None:
    """Best-effort close of the file behind a rejected lazy array (HDF5 only holds a handle)."""
    file = getattr(data, "file", None)
    if file is not None and hasattr(file, "close"):
        try:
            file.close()
        except Exception:  # pragma: no cover - closing is a courtesy
            pass
