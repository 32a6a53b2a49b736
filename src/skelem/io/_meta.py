"""Small helpers shared by the format readers: the metadata tuple and tolerant text parsing."""

from __future__ import annotations

import json
from typing import Any

# File metadata: voxel size (z, y, x) or None, its unit, and the SkelEM metadata dict or None.
Meta = tuple[tuple[float, float, float] | None, str | None, dict | None]


def as_str(value: Any) -> str | None:
    """``value`` as text (bytes decoded as UTF-8), ``None`` for ``None``."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def json_dict(value: Any, key: str | None = None) -> dict | None:
    """Parse a JSON text into a dict (optionally taking ``key`` from it); ``None`` when not JSON."""
    text = as_str(value)
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, TypeError):
        return None
    if key is not None:
        parsed = parsed.get(key) if isinstance(parsed, dict) else None
    return parsed if isinstance(parsed, dict) else None
