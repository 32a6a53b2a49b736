"""Multiscale pyramids for finished OME-Zarr outputs, built in one resumable pass.

:func:`build_pyramid` adds the downsampled levels ``"1"``, ``"2"``... beside the full-resolution
array ``"0"`` of an OME-Zarr image and then lists them in its NGFF ``multiscales`` metadata, so
napari, neuroglancer or BigDataViewer show a large result at once. It works level by level and,
within a level, output chunk by output chunk; a small JSON record in the store
(:data:`PROGRESS_FILE`) says how many chunks of each level are done, so a killed run, started
again, continues where it stopped. Level ``k`` is the mean of ``2``-voxel blocks of level ``k-1``
(the first level reads the full-resolution array, each later one the level before, so the
full-resolution data are read once); the metadata names the new levels only when all are
complete, so a reader never sees a half-written level.

Which axes halve: at each level the axes whose physical voxel size is within 1.5 times the finest
(all three for SkelEM's isotropic results; only Y and X of an anisotropic volume until Z's voxel
size is reached). Levels are added until one level-0 chunk holds a whole ``(Y, X)`` plane.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skelem.atomic import write_text_atomic
from skelem.errors import InputError
from skelem.events import ProgressCallback, ProgressEvent, no_progress
from skelem.io.ngff import image_attrs, ngff_version, read_multiscales

logger = logging.getLogger(__name__)

PROGRESS_FILE = "skelem-pyramid.json"
"""Name of the progress record inside the store while a pyramid is being built."""

_FORMAT = "skelem-pyramid"
_FORMAT_VERSION = 1
_MAX_LEVELS = 12
_SAVE_EVERY_SECONDS = 1.0

Shape3 = tuple[int, int, int]


@dataclass(frozen=True)
class Level:
    """One level of a pyramid.

    Attributes
    ----------
    path : str
        Array name in the group (``"1"``, ``"2"``...).
    shape : tuple of int
        ``(Z, Y, X)``.
    factors : tuple of int
        Voxel size over level 0's along ``(z, y, x)`` (powers of 2).
    step : tuple of int
        Voxel size over the previous level's (1 or 2 per axis).
    chunks : tuple of int
        Chunk shape (level 0's, clipped to the level's shape).
    """

    path: str
    shape: Shape3
    factors: Shape3
    step: Shape3
    chunks: Shape3

    @property
    def n_chunks(self) -> int:
        """How many chunks the level has."""
        return int(np.prod(_chunk_grid(self.shape, self.chunks)))


def plan_levels(
    shape: Sequence[int],
    chunks: Sequence[int],
    voxel_size: Sequence[float] | None = None,
    max_levels: int | None = None,
) -> list[Level]:
    """The levels to add below a full-resolution array (pure geometry).

    Parameters
    ----------
    shape : tuple of int
        ``(Z, Y, X)`` of level 0.
    chunks : tuple of int
        Chunk shape of level 0; levels are added until one chunk holds a whole ``(Y, X)`` plane.
    voxel_size : tuple of float, optional
        ``(z, y, x)`` of level 0 (any unit); ``None`` is taken as isotropic.
    max_levels : int, optional
        At most this many levels below level 0 (default: no limit but 12).

    Returns
    -------
    list of Level
        Empty when level 0 already fits in one chunk laterally.
    """
    shape3 = tuple(int(n) for n in shape)
    chunk3 = tuple(int(c) for c in chunks)
    physical = np.asarray(voxel_size if voxel_size is not None else (1.0, 1.0, 1.0), float)
    limit = _MAX_LEVELS if max_levels is None else min(int(max_levels), _MAX_LEVELS)
    levels: list[Level] = []
    factors = np.ones(3, dtype=int)
    current = np.asarray(shape3)
    while len(levels) < limit and (current[1] > chunk3[1] or current[2] > chunk3[2]):
        size = physical * factors
        step = np.where((size <= 1.5 * size.min()) & (current > 1), 2, 1)
        if (step == 1).all():
            break
        factors = factors * step
        current = -(-current // step)
        level_shape = tuple(int(n) for n in current)
        levels.append(
            Level(
                path=str(len(levels) + 1),
                shape=level_shape,  # type: ignore[arg-type]
                factors=tuple(int(f) for f in factors),  # type: ignore[arg-type]
                step=tuple(int(s) for s in step),  # type: ignore[arg-type]
                chunks=tuple(min(c, n) for c, n in zip(chunk3, level_shape, strict=True)),  # type: ignore[arg-type]
            )
        )
    return levels


def downsample_mean(block: np.ndarray, step: Sequence[int]) -> np.ndarray:
    """The mean of ``step``-sized blocks of ``block``; partial blocks at the far edges average
    the voxels they hold.

    Parameters
    ----------
    block : array-like
        ``(Z, Y, X)``.
    step : tuple of int
        Block size along each axis.

    Returns
    -------
    numpy.ndarray
        float64, shape ``ceil(block.shape / step)``.
    """
    step3 = tuple(int(s) for s in step)
    out_shape = tuple(-(-n // s) for n, s in zip(block.shape, step3, strict=True))
    padded_shape = tuple(n * s for n, s in zip(out_shape, step3, strict=True))
    padded = np.zeros(padded_shape, dtype=np.float64)
    padded[tuple(slice(0, n) for n in block.shape)] = np.asarray(block)
    sums = padded.reshape(
        out_shape[0], step3[0], out_shape[1], step3[1], out_shape[2], step3[2]
    ).sum(axis=(1, 3, 5))
    counts = [
        np.minimum(step3[a], block.shape[a] - np.arange(out_shape[a]) * step3[a]) for a in range(3)
    ]
    return sums / (counts[0][:, None, None] * counts[1][None, :, None] * counts[2][None, None, :])


def build_pyramid(
    path: str | Path,
    *,
    max_levels: int | None = None,
    if_image: bool = False,
    progress: ProgressCallback = no_progress,
) -> list[Level]:
    """Add the downsampled levels to a finished OME-Zarr image and list them in its metadata.

    Parameters
    ----------
    path : str or Path
        An OME-Zarr image group (NGFF 0.4 or 0.5) with three axes ``z, y, x`` whose metadata
        lists only level ``"0"`` (a finished output, or its partial store before the rename).
    max_levels : int, optional
        At most this many levels below level 0.
    if_image : bool
        Return without doing anything when ``path`` is not such an image (e.g. a plain array
        store), instead of raising.
    progress : callable, optional
        Receives a :class:`~skelem.events.ProgressEvent` (task ``"pyramid"``) per chunk.

    Returns
    -------
    list of Level
        The levels below level 0 (empty when the volume is small enough; those already listed
        when the pyramid exists).

    Raises
    ------
    InputError
        ``path`` is not a single-image (z, y, x) OME-Zarr group.
    """
    import zarr

    path = Path(path)
    try:
        group = zarr.open_group(str(path), mode="r+")
        multiscale = read_multiscales(group.attrs)
    except Exception:
        multiscale = None
    version = ngff_version(group.attrs) if multiscale is not None else None
    if multiscale is None or version not in ("0.4", "0.5"):
        if if_image:
            return []
        raise InputError(f"{path} is not an OME-Zarr image (NGFF 0.4 or 0.5 multiscales).")
    axes = [str(a.get("name") if isinstance(a, dict) else a).lower() for a in multiscale["axes"]]
    datasets = multiscale.get("datasets") or []
    if axes != ["z", "y", "x"] or not datasets or str(datasets[0].get("path")) != "0":
        if if_image:
            return []
        raise InputError(f"{path} is not a (z, y, x) image with its full resolution at '0'.")
    record_path = path / PROGRESS_FILE
    if len(datasets) > 1 and not record_path.exists():
        return _listed_levels(datasets, group)  # built before
    base = group["0"]
    voxel, unit = _level0_scale(multiscale)
    levels = plan_levels(base.shape, base.chunks, voxel, max_levels)
    if not levels:
        return []
    record = _start_or_resume(group, record_path, base, levels)
    total = sum(level.n_chunks for level in levels)
    finished = sum(record["done"])
    source = base
    try:
        for index, level in enumerate(levels):
            target = group[level.path]
            last_save = time.monotonic()
            for position, chunk in enumerate(_chunk_slices(level.shape, level.chunks)):
                if position < record["done"][index]:
                    continue
                region = tuple(
                    slice(s.start * f, min(s.stop * f, n))
                    for s, f, n in zip(chunk, level.step, source.shape, strict=True)
                )
                target[chunk] = _cast(downsample_mean(source[region], level.step), target.dtype)
                record["done"][index] = position + 1
                finished += 1
                if time.monotonic() - last_save > _SAVE_EVERY_SECONDS:
                    write_text_atomic(record_path, json.dumps(record))
                    last_save = time.monotonic()
                progress(ProgressEvent("pyramid", finished, total))
            source = target
    finally:  # an error or Ctrl-C keeps the chunks done so far; a kill loses at most 1 s of work
        write_text_atomic(record_path, json.dumps(record))
    _write_metadata(group, multiscale, version, voxel, unit, levels)
    record_path.unlink(missing_ok=True)
    return levels


def _level0_scale(multiscale: dict) -> tuple[tuple[float, float, float] | None, str | None]:
    """Level 0's voxel size and unit as written, ``None`` for the placeholder scale of 1."""
    scale = _scale(multiscale["datasets"][0])
    units = {a.get("unit") for a in multiscale["axes"] if isinstance(a, dict)}
    unit = units.pop() if len(units) == 1 else None
    if unit is None and np.allclose(scale, 1.0):
        return None, None
    return tuple(float(v) for v in scale), unit  # type: ignore[return-value]


def _start_or_resume(group: Any, record_path: Path, base: Any, levels: list[Level]) -> dict:
    """The progress record: the saved one when it matches this plan, else a new one (and new,
    empty level arrays)."""
    plan = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "base_shape": list(base.shape),
        "dtype": str(base.dtype),
        "levels": [
            {"path": lv.path, "shape": list(lv.shape), "chunks": list(lv.chunks)} for lv in levels
        ],
    }
    if record_path.exists():
        try:
            saved = json.loads(record_path.read_text())
        except (OSError, ValueError):
            saved = None
        if (
            isinstance(saved, dict)
            and {k: saved.get(k) for k in plan} == plan
            and all(lv.path in group for lv in levels)
        ):
            logger.info("resuming the pyramid of %s at %s chunks done", group.store, saved["done"])
            return saved
    zarr_format = group.metadata.zarr_format
    extra = {"dimension_names": ("z", "y", "x")} if zarr_format == 3 else {}
    for level in levels:
        group.create_array(
            level.path,
            shape=level.shape,
            dtype=base.dtype,
            chunks=level.chunks,
            fill_value=0,
            overwrite=True,
            **extra,
        )
    record = {**plan, "done": [0] * len(levels)}
    write_text_atomic(record_path, json.dumps(record))
    return record


def _write_metadata(
    group: Any,
    multiscale: dict,
    version: str,
    voxel: tuple[float, float, float] | None,
    unit: str | None,
    levels: list[Level],
) -> None:
    attrs = image_attrs(
        voxel,
        unit,
        version,
        name=str(multiscale.get("name") or "image"),
        level_factors=[(1, 1, 1), *(level.factors for level in levels)],
        downsampling={
            "method": "mean",
            "description": "mean of 2-voxel blocks of the previous level (skelem.io.pyramid)",
        },
    )
    group.attrs.update(attrs)


def _listed_levels(datasets: list[dict], group: Any) -> list[Level]:
    """The levels a finished pyramid lists (for a repeated call)."""
    listed = []
    previous = np.ones(3, dtype=int)
    base_scale = _scale(datasets[0])
    for dataset in datasets[1:]:
        array = group[str(dataset["path"])]
        factors = np.rint(_scale(dataset) / base_scale).astype(int)
        listed.append(
            Level(
                path=str(dataset["path"]),
                shape=tuple(int(n) for n in array.shape),  # type: ignore[arg-type]
                factors=tuple(int(f) for f in factors),  # type: ignore[arg-type]
                step=tuple(int(s) for s in factors // previous),  # type: ignore[arg-type]
                chunks=tuple(int(c) for c in array.chunks),  # type: ignore[arg-type]
            )
        )
        previous = factors
    return listed


def _scale(dataset: dict) -> np.ndarray:
    scale = np.ones(3)
    for transform in dataset.get("coordinateTransformations") or []:
        if transform.get("type") == "scale":
            scale = scale * np.asarray(transform["scale"], dtype=float)
    return scale


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        return np.clip(np.rint(values), limits.min, limits.max).astype(dtype)
    return values.astype(dtype)


def _chunk_grid(shape: Sequence[int], chunks: Sequence[int]) -> tuple[int, ...]:
    return tuple(-(-int(n) // int(c)) for n, c in zip(shape, chunks, strict=True))


def _chunk_slices(shape: Sequence[int], chunks: Sequence[int]):
    """Every chunk of an array as ``(slice, slice, slice)``, in C order."""
    grid = _chunk_grid(shape, chunks)
    for index in itertools.product(*(range(g) for g in grid)):
        yield tuple(
            slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(index, chunks, shape, strict=True)
        )
