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


class _Volume:
    """What ``_make_config`` asks of a volume: its factor."""

    def anisotropy_factor(self, factor):
        return int(factor)


def test_new_configurations_sample_by_their_factor_and_saved_ones_keep_theirs(tmp_path) -> None:
    """From x8 on a new model removes 2 slow modes of its sampled detail and keeps 0.85 of the
    rest (``skelem train``, the benchmark's budgets); below, and in a saved model's
    configuration, nothing changes; a config file's own values win."""
    import json

    from skelem.cli.commands import _make_config
    from skelem.config.models import LARGE_FACTOR_SAMPLING, build_config, sampling_defaults
    from skelem.evaluation.benchmark import Budget

    assert sampling_defaults(4) == {} and sampling_defaults(8) == LARGE_FACTOR_SAMPLING
    for factor, expected in ((4, (0.7, 0)), (8, (0.85, 2)), (10, (0.85, 2))):
        for config in (
            _make_config(None, _Volume(), factor, None, None, None, None, "cpu"),
            Budget().config(factor),
        ):
            assert (config.diffusion.detail, config.diffusion.slow_modes) == expected
    written = tmp_path / "config.json"
    written.write_text(json.dumps({"diffusion": {"detail": 0.6}}))
    own = _make_config(str(written), _Volume(), 8, None, None, None, None, "cpu")
    assert (own.diffusion.detail, own.diffusion.slow_modes) == (0.6, 2)
    # a manifest saved before slow_modes existed: loaded as saved, no new default slipped in
    saved = build_config({"degradation": {"factor": 8}}).model_dump(mode="json")
    del saved["diffusion"]["slow_modes"]
    loaded = build_config(saved)
    assert (loaded.diffusion.detail, loaded.diffusion.slow_modes) == (0.7, 0)
