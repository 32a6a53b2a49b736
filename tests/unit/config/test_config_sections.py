"""A configuration section given in part keeps the configuration's own defaults for the rest."""

from __future__ import annotations

from skelem.config.models import ExperimentConfig, build_config, load_config


def test_a_partial_stage_keeps_that_stages_defaults_not_a_generic_stages(tmp_path) -> None:
    """``{"alignment_training": {"iterations": 300}}`` used to give the alignment a generic
    stage's learning rate (2e-3, 10x its own 2e-4), batch 8 and 128^2 patches."""
    defaults = ExperimentConfig()
    path = tmp_path / "c.json"
    path.write_text(
        '{"alignment_training": {"iterations": 300}, "skeleton_training": {"seed": 3},'
        ' "refiner": {"channels": 8}}'
    )
    for config in (
        load_config(path),
        build_config(
            {
                "alignment_training": {"iterations": 300},
                "skeleton_training": {"seed": 3},
                "refiner": {"channels": 8},
            }
        ),
    ):
        assert config.alignment_training == defaults.alignment_training.model_copy(
            update={"iterations": 300}
        )
        assert config.skeleton_training == defaults.skeleton_training.model_copy(update={"seed": 3})
        assert config.refiner == defaults.refiner.model_copy(update={"channels": 8})
        assert config.refiner_training == defaults.refiner_training
    assert ExperimentConfig.model_validate(defaults.model_dump()) == defaults
