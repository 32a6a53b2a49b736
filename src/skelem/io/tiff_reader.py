"""TIFF stacks: ImageJ hyperstacks (``spacing`` and resolution tags) and OME-TIFF, read lazily."""

from __future__ import annotations

import contextlib
import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from skelem.errors import InputError
from skelem.io._meta import Meta, json_dict
from skelem.io.lazy import AxisView
from skelem.io.units import check_voxel_size, normalize_unit

logger = logging.getLogger(__name__)


def open_tiff(path: Path, level: int) -> tuple[Any, Meta]:
    """Open a TIFF stack lazily (the file stays open while the array is in use).

    Parameters
    ----------
    path : Path
        The ``.tif`` file (ImageJ hyperstack, OME-TIFF or plain multi-page TIFF).
    level : int
        Pyramid level of a multi-resolution file (0 = full resolution).

    Returns
    -------
    data : array-like
        The ``(Z, Y, X)`` array, read on indexing.
    meta : Meta
        Voxel size, its unit and the SkelEM metadata dict (each ``None`` when absent).
    """
    import tifffile

    with _tifffile_messages() as messages:
        tif = tifffile.TiffFile(path)  # kept open: the lazy array reads from it
        try:
            return _tiff_volume(tif, path, level, messages)
        except BaseException:
            tif.close()
            raise


class _Collect(logging.Filter):
    """Keep tifffile's log messages in a list instead of letting them reach the terminal."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.messages.append(record.getMessage())
        logger.debug("tifffile: %s", record.getMessage())
        return False


@contextlib.contextmanager
def _tifffile_messages() -> Iterator[list[str]]:
    """Collect what tifffile logs while a file is opened (on a damaged file it logs errors such
    as "invalid page offset" and carries on): the user gets one sentence instead."""
    log = logging.getLogger("tifffile")
    collect = _Collect()
    log.addFilter(collect)
    try:
        yield collect.messages
    finally:
        log.removeFilter(collect)


def _tiff_volume(tif: Any, path: Path, level: int, messages: list[str]) -> tuple[Any, Meta]:
    import tifffile

    if not tif.series:
        raise InputError(f"{path} is damaged or empty: it holds a TIFF header but no image.")
    series = tif.series[0]
    check_complete(tif, series, path, messages)
    if level >= len(series.levels):
        raise InputError(
            f"{path} has {len(series.levels)} resolution level(s); level {level} does not exist."
        )
    axes = series.axes
    data: Any = None
    if level == 0 and series.dataoffset is not None:
        try:
            data = tifffile.memmap(path, series=0, mode="r")
        except Exception:  # not memory-mappable after all (e.g. odd strides): fall back to zarr
            data = None
        if data is not None and data.shape != series.shape:
            data = data.reshape(series.shape)
    if data is None:
        import zarr

        data = zarr.open(series.aszarr(level=level), mode="r")
    data = _select_tiff_axes(data, axes, path)
    return data, _tiff_metadata(tif, path)


def _announced_planes(tif: Any) -> tuple[int | None, str]:
    """The number of 2-D images the file says it holds, and where it says so."""
    if tif.is_imagej and tif.imagej_metadata:
        ij = tif.imagej_metadata
        images = ij.get("images")
        if images is None and any(k in ij for k in ("slices", "channels", "frames")):
            images = math.prod(int(ij.get(k, 1)) for k in ("slices", "channels", "frames"))
        if images is not None:
            return int(images), "its ImageJ metadata"
    if tif.is_shaped and tif.shaped_metadata:
        shape = tif.shaped_metadata[0].get("shape")
        page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
        if isinstance(shape, list) and shape:
            return math.prod(int(n) for n in shape) // max(1, math.prod(page.shape)), "its header"
    return None, ""


def _plane_count(series: Any) -> int:
    """Number of 2-D images in a series (every axis but Y, X and samples)."""
    return math.prod(
        int(n) for n, a in zip(series.shape, series.axes, strict=True) if a not in "YXS"
    )


def check_complete(tif: Any, series: Any, path: Path, messages: list[str]) -> None:
    """Refuse a TIFF whose pages or pixel data stop before the end it announces.

    A truncated stack still opens: tifffile reads the pages it can reach (often just the first,
    a 2-D image) and logs errors. Three signs are checked: fewer images than the ImageJ metadata
    (``images``, or ``slices`` x ``channels`` x ``frames``) or tifffile's shape header announce,
    pixel data running past the end of the file, and an IFD offset beyond the end of the file.

    Parameters
    ----------
    tif : tifffile.TiffFile
        The open file.
    series : tifffile.TiffPageSeries
        Its first series.
    path : Path
        The file, for its size and the message.
    messages : list of str
        What tifffile logged while opening it.

    Raises
    ------
    InputError
        "``path`` is damaged or truncated: pages are missing (...)."
    """
    size = path.stat().st_size
    expected, where = _announced_planes(tif)
    planes = _plane_count(series)
    plane_bytes = max(1, series.nbytes // max(1, planes))
    if series.dataoffset is not None:  # contiguous: the planes that fit in the file
        data_end = series.dataoffset + series.nbytes
        complete = max(0, (size - series.dataoffset) // plane_bytes)
    else:
        last = series.pages[-1] if len(series.pages) else None
        offsets = getattr(last, "dataoffsets", None) or (0,)
        counts = getattr(last, "databytecounts", None) or (0,)
        data_end = max(o + c for o, c in zip(offsets, counts, strict=False))
        complete = None
    lost_pages = any("invalid page offset" in m for m in messages)
    if not ((expected is not None and planes < expected) or data_end > size or lost_pages):
        return
    if complete is not None:
        found = min(max(planes, expected or 0), complete)
    else:
        found = len(tif.pages) - (1 if data_end > size else 0)
    if expected is not None:
        detail = f"{where} announces {expected} image(s), {found} found complete"
    else:
        detail = f"only {found} could be read before the end of the file"
    raise InputError(f"{path} is damaged or truncated: pages are missing ({detail}).")


def _select_tiff_axes(data: Any, axes: str, path: Path) -> Any:
    """Keep Z, Y, X (a generic page axis Q/I stands for Z); refuse real channel/time axes."""
    shape = tuple(int(n) for n in data.shape)
    if len(axes) != len(shape):
        return data
    z_axis = "Z" if "Z" in axes else next((a for a in "QIP" if a in axes), None)
    stacked = [a for a, n in zip(axes, shape, strict=True) if a not in ("Y", "X") and n > 1]
    if z_axis is None and len(stacked) == 1 and stacked[0] in "CT":
        # A plain stack labelled as channels or frames (tifffile's ImageJ default for 3-D data,
        # or an ImageJ stack saved as a time series): its only stacking axis is Z.
        logger.warning("%s stores its stack along axis %s; reading it as Z", path, stacked[0])
        z_axis = stacked[0]
    extra = [a for a in stacked if a != z_axis]
    if extra:
        raise InputError(
            f"{path} has axes {axes} with shape {shape}; SkelEM needs a single-channel (Z, Y, X) "
            "stack, so save one channel or time point per file (or relabel frames as slices)."
        )
    if z_axis is None or "Y" not in axes or "X" not in axes:
        return data  # 2-D or unnamed: check_array reports the shape
    spatial = (axes.index(z_axis), axes.index("Y"), axes.index("X"))
    if spatial == (0, 1, 2) and len(shape) == 3:
        return data
    fixed = {i: 0 for i in range(len(shape)) if i not in spatial}
    return AxisView(data, spatial, fixed)


def _tiff_metadata(tif: Any, path: Path) -> Meta:
    page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
    if tif.is_imagej and tif.imagej_metadata is not None:
        ij = tif.imagej_metadata
        unit = normalize_unit(ij.get("unit"), strict=False)
        y_size, x_size = _tiff_pixel_size(page)
        voxel = (float(ij.get("spacing", 1.0)), y_size, x_size)
        metadata = json_dict(ij.get("Info"), key="skelem")
        if unit is None:
            if voxel == (1.0, 1.0, 1.0):
                return None, None, metadata
            logger.warning(
                "%s has a calibration without a unit; voxel size %s is in pixels", path, voxel
            )
            return voxel, "pixel", metadata
        return voxel, unit, metadata
    if tif.is_ome and tif.ome_metadata:
        return (*_ome_tiff_voxel_size(tif.ome_metadata), None)
    if tif.is_shaped and tif.shaped_metadata:
        shaped = tif.shaped_metadata[0]
        metadata = shaped.get("skelem") if isinstance(shaped.get("skelem"), dict) else None
        if "voxel_size" in shaped:
            try:
                voxel = check_voxel_size(shaped["voxel_size"], str(path))
            except InputError:
                return None, None, metadata
            return voxel, normalize_unit(shaped.get("unit"), strict=False) or "pixel", metadata
        return None, None, metadata
    return None, None, None


def _tiff_pixel_size(page: Any) -> tuple[float, float]:
    """``(y, x)`` pixel size from the Y/XResolution tags (pixels per unit); 1.0 when absent."""
    sizes = []
    for name in ("YResolution", "XResolution"):
        tag = page.tags.get(name)
        size = 1.0
        if tag is not None:
            numerator, denominator = tag.value
            if numerator and denominator:
                size = float(denominator) / float(numerator)
        sizes.append(size)
    return sizes[0], sizes[1]


def _ome_tiff_voxel_size(xml: str) -> tuple[tuple[float, float, float] | None, str | None]:
    """Physical sizes from OME-XML ``Pixels`` (all three must be present, in one unit)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None, None
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return None, None
    sizes, units = [], set()
    for axis in "ZYX":
        value = pixels.get(f"PhysicalSize{axis}")
        if value is None:
            return None, None
        sizes.append(float(value))
        units.add(normalize_unit(pixels.get(f"PhysicalSize{axis}Unit", "µm"), strict=False))
    if len(units) != 1 or None in units:
        return None, None
    return (sizes[0], sizes[1], sizes[2]), units.pop()


# ----------------------------------------------------------------------------------- OME-Zarr
