"""Validated, versioned configuration, one model per concern, composed into :class:`ExperimentConfig`."""

from skelem.config.models import (
    CONFIG_VERSION,
    DegradationConfig,
    DiffusionConfig,
    ExperimentConfig,
    InferenceConfig,
    NetworkConfig,
    TrainingConfig,
    load_config,
    parse_profile,
    save_config,
)

__all__ = [
    "CONFIG_VERSION",
    "DegradationConfig",
    "DiffusionConfig",
    "ExperimentConfig",
    "InferenceConfig",
    "NetworkConfig",
    "TrainingConfig",
    "load_config",
    "parse_profile",
    "save_config",
]
