"""Physical units of voxel sizes: OME-NGFF names, ImageJ spellings and conversions."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from skelem.errors import InputError

logger = logging.getLogger(__name__)

#: Space units allowed by OME-NGFF (v0.4/v0.5 ``axes[].unit``).
NGFF_SPACE_UNITS = frozenset(
    {
        "angstrom", "attometer", "centimeter", "decimeter", "exameter", "femtometer", "foot",
        "gigameter", "hectometer", "inch", "kilometer", "megameter", "meter", "micrometer",
        "mile", "millimeter", "nanometer", "parsec", "petameter", "picometer", "terameter",
        "yard", "yoctometer", "yottameter", "zeptometer", "zettameter",
    }
)  # fmt: skip

# Spellings met in ImageJ, OME-XML, HDF5 attributes and on the command line.
_ALIASES = {
    "um": "micrometer",
    "µm": "micrometer",  # micro sign
    "μm": "micrometer",  # greek mu
    "\\u00b5m": "micrometer",  # ImageJ escape as decoded by some readers
    "micron": "micrometer",
    "microns": "micrometer",
    "micrometre": "micrometer",
    "micrometers": "micrometer",
    "nm": "nanometer",
    "nanometre": "nanometer",
    "nanometers": "nanometer",
    "mm": "millimeter",
    "millimetre": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "metre": "meter",
    "pm": "picometer",
    "a": "angstrom",
    "å": "angstrom",
    "angstroms": "angstrom",
}

# Spellings that mean "no physical unit".
_UNITLESS = {"", "pixel", "pixels", "px", "none", "unknown"}

# Metric units as powers of ten of a meter (exact integer exponents keep conversions exact).
_METER_EXPONENT = {
    "picometer": -12,
    "angstrom": -10,
    "nanometer": -9,
    "micrometer": -6,
    "millimeter": -3,
    "centimeter": -2,
    "decimeter": -1,
    "meter": 0,
}

# How ImageJ spells the common units (its ``unit`` field is free text; ``um`` shows as µm).
_IMAGEJ = {
    "micrometer": "um",
    "nanometer": "nm",
    "millimeter": "mm",
    "centimeter": "cm",
    "meter": "m",
}


def normalize_unit(unit: str | None, strict: bool = True) -> str | None:
    """The OME-NGFF name of a length unit (``"um"`` -> ``"micrometer"``).

    Parameters
    ----------
    unit : str or None
        Any common spelling (``um``, ``µm``, ``micron``, ``nm``, ``nanometer``...).
    strict : bool
        When true an unknown unit raises :class:`~skelem.errors.InputError`; when false it is
        logged and ``None`` is returned.

    Returns
    -------
    str or None
        The NGFF name, or ``None`` for "no unit" spellings (``pixel``, empty, ``None``).
    """
    if unit is None:
        return None
    text = str(unit).strip()
    key = text.lower()
    if key in _UNITLESS:
        return None
    if key in NGFF_SPACE_UNITS:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    if strict:
        raise InputError(
            f"Unknown length unit {text!r}; use an OME-NGFF unit such as micrometer or nanometer."
        )
    logger.warning("ignoring unknown length unit %r", text)
    return None


def imagej_unit(unit: str | None) -> str | None:
    """The ImageJ spelling of an NGFF unit (``micrometer`` -> ``um``), ``None`` when unitless.

    Parameters
    ----------
    unit : str, optional
        A unit in any spelling :func:`normalize_unit` accepts.

    Returns
    -------
    str or None
    """
    unit = normalize_unit(unit, strict=False)
    if unit is None:
        return None
    return _IMAGEJ.get(unit, unit)


def convert_length(value: float, from_unit: str | None, to_unit: str | None) -> float | None:
    """``value`` converted between two metric units, or ``None`` when either unit is not metric.

    Parameters
    ----------
    value : float
        A length in ``from_unit``.
    from_unit, to_unit : str, optional
        Units in any spelling :func:`normalize_unit` accepts.

    Returns
    -------
    float or None
    """
    source = normalize_unit(from_unit, strict=False)
    target = normalize_unit(to_unit, strict=False)
    if source not in _METER_EXPONENT or target not in _METER_EXPONENT:
        return None
    shift = _METER_EXPONENT[source] - _METER_EXPONENT[target]
    return float(value) * 10**shift if shift >= 0 else float(value) / 10 ** (-shift)


def check_voxel_size(
    voxel_size: Sequence[float], source: str = "voxel_size"
) -> tuple[float, float, float]:
    """Return ``voxel_size`` as three positive finite floats ``(z, y, x)``.

    Parameters
    ----------
    voxel_size : sequence of float
        The voxel size to check.
    source : str
        Named in the error message.

    Returns
    -------
    tuple of float

    Raises
    ------
    InputError
        When it is not three positive finite numbers.
    """
    try:
        values = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError):
        raise InputError(
            f"The voxel size of {source} must be three numbers (z, y, x), got {voxel_size!r}."
        ) from None
    if len(values) != 3:
        raise InputError(
            f"The voxel size of {source} must have three values (z, y, x), got {len(values)}."
        )
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise InputError(f"The voxel size of {source} must be positive and finite, got {values}.")
    return values  # type: ignore[return-value]
