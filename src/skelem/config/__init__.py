"""Validated, versioned configuration: one model per concern, composed into ``ExperimentConfig``.

The names below are imported on first use, so that ``skelem.config.choices`` (the restore choices
the CLI lists) can be imported without pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from skelem._lazy import lazy_attributes

if TYPE_CHECKING:
    from skelem.config.models import (
        CONFIG_VERSION,
        DegradationConfig,
        DiffusionConfig,
        ExperimentConfig,
        NetworkConfig,
        TrainingConfig,
        load_config,
        parse_profile,
        save_config,
    )
    from skelem.config.restore import RestoreOptions

_HOMES = {
    "CONFIG_VERSION": "skelem.config.models",
    "DegradationConfig": "skelem.config.models",
    "DiffusionConfig": "skelem.config.models",
    "ExperimentConfig": "skelem.config.models",
    "NetworkConfig": "skelem.config.models",
    "TrainingConfig": "skelem.config.models",
    "load_config": "skelem.config.models",
    "parse_profile": "skelem.config.models",
    "save_config": "skelem.config.models",
    "RestoreOptions": "skelem.config.restore",
}

__all__ = [
    "CONFIG_VERSION",
    "DegradationConfig",
    "DiffusionConfig",
    "ExperimentConfig",
    "NetworkConfig",
    "RestoreOptions",
    "TrainingConfig",
    "load_config",
    "parse_profile",
    "save_config",
]

__getattr__ = lazy_attributes(__name__, _HOMES)
