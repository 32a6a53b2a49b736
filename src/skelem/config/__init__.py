"""Validated, versioned configuration, one model per concern, composed into :class:`ExperimentConfig`."""

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
