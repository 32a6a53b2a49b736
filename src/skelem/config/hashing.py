"""The SHA-256 of an experiment config: one short string that says whether two configs differ.

The hash is taken over the config's canonical JSON: ``json.dumps(config, sort_keys=True)`` of its
JSON-mode dump (the default separators, ASCII escapes). Two configs equal field by field give the
same hash whatever order their fields were set in; any changed value changes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skelem.config.models import ExperimentConfig


def canonical_json(config: ExperimentConfig | Mapping[str, Any]) -> str:
    """The canonical JSON text of ``config`` (keys sorted), the input of :func:`config_sha256`.

    Parameters
    ----------
    config : ExperimentConfig or mapping
        A validated config, or its ``model_dump(mode="json")``.

    Returns
    -------
    str
    """
    data = config if isinstance(config, Mapping) else config.model_dump(mode="json")
    return json.dumps(data, sort_keys=True)


def config_sha256(config: ExperimentConfig | Mapping[str, Any]) -> str:
    """The SHA-256 (64 hex digits) of ``config``'s canonical JSON (see :func:`canonical_json`).

    Parameters
    ----------
    config : ExperimentConfig or mapping
        A validated config, or its ``model_dump(mode="json")`` (both give the same hash).

    Returns
    -------
    str
    """
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()
