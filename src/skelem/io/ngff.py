"""OME-NGFF image metadata, written and read through the ``ome-zarr-models`` library.

SkelEM's OME-Zarr outputs are single-image groups with three spatial axes ``z, y, x`` and one or
more resolution levels (``"0"`` full resolution, then the levels of :mod:`skelem.io.pyramid`).
:func:`image_attrs` builds their group attributes as the library's validated models for NGFF 0.4
(zarr format 2: ``attrs["multiscales"]``) or 0.5 (zarr format 3: ``attrs["ome"]``);
:func:`read_multiscales` parses a store's attributes with the same models, and falls back to a
lenient reading for what the library refuses (NGFF 0.3 and older, or a store with a small fault
that other tools still open), so every store SkelEM read before stays readable.
:func:`validate_image` validates a whole store (metadata and arrays) with the library.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import skelem

logger = logging.getLogger(__name__)

NGFF_VERSIONS = ("0.4", "0.5")
SPATIAL_AXES = ("z", "y", "x")


def _image_attrs_model(version: str) -> Any:
    if version == "0.4":
        from ome_zarr_models.v04.image import ImageAttrs
    else:
        from ome_zarr_models.v05.image import ImageAttrs
    return ImageAttrs


def image_attrs(
    voxel_size: Sequence[float] | None,
    unit: str | None,
    version: str,
    name: str,
    level_factors: Sequence[Sequence[int]] = ((1, 1, 1),),
    downsampling: dict | None = None,
) -> dict:
    """The NGFF group attributes of a SkelEM image, validated by ``ome-zarr-models``.

    Parameters
    ----------
    voxel_size : sequence of float or None
        ``(z, y, x)`` of level 0 in ``unit``; ``None`` writes a unit-less scale of 1.
    unit : str or None
        An NGFF space unit (``micrometer``...); ``None`` leaves the axes without a unit.
    version : {"0.4", "0.5"}
        NGFF version.
    name : str
        The image's name.
    level_factors : sequence of (int, int, int)
        For each resolution level (array ``"0"``, ``"1"``...), its voxel size over level 0's
        along ``(z, y, x)``; level 0 is ``(1, 1, 1)``.
    downsampling : dict, optional
        How the levels were made, stored as the multiscale's ``metadata`` (with its ``type``).

    Returns
    -------
    dict
        JSON-friendly attributes: ``{"multiscales": [...]}`` (0.4) or ``{"ome": {...}}`` (0.5).

    Raises
    ------
    pydantic.ValidationError
        When the library refuses the metadata (a bug: SkelEM's inputs are checked before).
    """
    base = [float(v) for v in (voxel_size or (1.0, 1.0, 1.0))]
    axes = [
        {"name": axis, "type": "space", **({"unit": unit} if unit and voxel_size else {})}
        for axis in SPATIAL_AXES
    ]
    datasets = [
        {
            "path": str(level),
            "coordinateTransformations": [
                {"type": "scale", "scale": [b * int(f) for b, f in zip(base, factors, strict=True)]}
            ],
        }
        for level, factors in enumerate(level_factors)
    ]
    multiscale: dict[str, Any] = {"name": name, "axes": axes, "datasets": datasets}
    if downsampling is not None:
        multiscale["type"] = downsampling.get("method", "mean")
        multiscale["metadata"] = {**downsampling, "skelem_version": skelem.__version__}
    if version == "0.4":
        multiscale["version"] = "0.4"
        document: dict[str, Any] = {"multiscales": [multiscale]}
    else:
        document = {"version": "0.5", "multiscales": [multiscale]}
    model = _image_attrs_model(version).model_validate(document)
    dumped = model.model_dump(mode="json", exclude_none=True, by_alias=True)
    return dumped if version == "0.4" else {"ome": dumped}


def ngff_version(attrs: Any) -> str | None:
    """The NGFF version declared by a group's attributes (``"0.4"``, ``"0.5"``...), if any.

    Parameters
    ----------
    attrs : mapping
        The group's attributes.

    Returns
    -------
    str or None
    """
    attrs = dict(attrs)
    if isinstance(attrs.get("ome"), dict):
        return str(attrs["ome"].get("version")) if attrs["ome"].get("version") else None
    entries = attrs.get("multiscales")
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        version = entries[0].get("version")
        return str(version) if version is not None else None
    return None


def read_multiscales(attrs: Any) -> dict | None:
    """The first ``multiscales`` entry of a group's attributes, parsed by ``ome-zarr-models``.

    NGFF 0.4 and 0.5 attributes are validated by the library's models and returned as their
    JSON form; anything the library refuses (NGFF 0.3 and older, a missing version, a small
    fault) is read leniently from the raw attributes instead, so such stores still open.

    Parameters
    ----------
    attrs : mapping
        The group's attributes (``zarr.Group.attrs``).

    Returns
    -------
    dict or None
        ``{"axes": [...], "datasets": [...], ...}``, or ``None`` when there is no multiscales
        metadata at all.
    """
    attrs = dict(attrs)
    version = ngff_version(attrs)
    if version in NGFF_VERSIONS:
        document = attrs["ome"] if version == "0.5" else {"multiscales": attrs.get("multiscales")}
        try:
            model = _image_attrs_model(version).model_validate(document)
        except Exception as err:  # pydantic.ValidationError, or a warning raised as an error
            logger.debug("NGFF %s metadata not valid for ome-zarr-models: %s", version, err)
        else:
            entry = model.multiscales[0].model_dump(mode="json", exclude_none=True, by_alias=True)
            if entry.get("axes") is not None:
                entry["axes"] = [dict(a) for a in entry["axes"]]
            return entry
    return _lenient_multiscales(attrs)


def _lenient_multiscales(attrs: dict) -> dict | None:
    """The raw first ``multiscales`` entry, for metadata ``ome-zarr-models`` does not accept."""
    if isinstance(attrs.get("ome"), dict):
        attrs = attrs["ome"]
    entries = attrs.get("multiscales")
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        return entries[0]
    return None


def validate_image(path: str | Path) -> Any:
    """Validate an OME-Zarr image (metadata and arrays) with ``ome-zarr-models``.

    Parameters
    ----------
    path : str or Path
        The image group.

    Returns
    -------
    ome_zarr_models.v04.Image or ome_zarr_models.v05.Image
        The library's model of the store.

    Raises
    ------
    pydantic.ValidationError or ValueError
        When the store is not a valid NGFF 0.4/0.5 image.
    """
    import zarr

    group = zarr.open_group(str(path), mode="r")
    version = ngff_version(group.attrs)
    if version == "0.4":
        from ome_zarr_models.v04.image import Image
    elif version == "0.5":
        from ome_zarr_models.v05.image import Image
    else:
        raise ValueError(f"{path} declares NGFF version {version!r}, not 0.4 or 0.5.")
    return Image.from_zarr(group)
