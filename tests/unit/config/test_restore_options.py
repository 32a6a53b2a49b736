"""The restore options: one validated model, its choices named once, old manifests still load."""

from __future__ import annotations

from typing import get_args

import pytest

from skelem.config import ExperimentConfig, RestoreOptions
from skelem.config.choices import METHODS, Planes
from skelem.config.models import DiffusionConfig
from skelem.config.restore import check_sampling
from skelem.errors import ConfigError


def test_an_old_manifest_with_an_inference_section_still_loads() -> None:
    """Manifests written before RestoreOptions hold ``inference`` (never read): it is dropped."""
    old = ExperimentConfig().model_dump(mode="json")
    old["inference"] = {
        "method": "skelem",
        "block_shape": [64, 256, 256],
        "fuse": "mean",
        "use_prior": True,
        "use_consistency": True,
        "samples": 1,
        "seed": 0,
        "device": "auto",
    }
    config = ExperimentConfig.model_validate(old)
    assert config == ExperimentConfig()
    assert "inference" not in config.model_dump()


def test_defaults_follow_the_model() -> None:
    options = RestoreOptions()
    assert options.method is None and options.steps is None and options.t0 is None
    assert (options.planes, options.fuse, options.dtype, options.normalize) == (
        "both",
        "end",
        "input",
        "model",
    )
    assert (options.samples, options.batch_size, options.seed) == (1, 8, 0)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"samples": 0}, "--samples must be at least 1."),
        ({"steps": 0}, "--steps must be at least 1."),
        ({"batch_size": 0}, "--batch-size must be at least 1."),
        ({"block_shape": (0, 8, 8)}, "--block must be three positive numbers"),
        ({"method": "bicubic"}, "Unknown method 'bicubic'; choose one of skelem,"),
        ({"planes": "xy"}, "Unknown planes 'xy'; choose one of both, xz, yz."),
        ({"fuse": "mean"}, "Unknown fusion 'mean'; choose one of end, steps."),
        ({"dtype": "uint8"}, "Unknown output dtype 'uint8'; use input or float32."),
    ],
)
def test_bad_values_are_refused_in_one_sentence(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        RestoreOptions(**values)


def test_the_cli_lists_the_choices_of_the_model() -> None:
    import click

    from skelem.cli.restore import restore

    choices = {
        p.name: list(p.type.choices) for p in restore.params if isinstance(p.type, click.Choice)
    }
    assert choices["method"] == list(METHODS)  # the Literal of RestoreOptions.method
    assert choices["planes"] == list(get_args(Planes))


@pytest.mark.parametrize(
    ("method", "values", "message"),
    [
        (
            "diffusion",
            {"steps": 2000},
            "--steps 2000 exceeds the model's 1000 diffusion timesteps.",
        ),
        ("skelem", {"t0": 1000}, "--t0 must be between 1 and 999 for this model, got 1000."),
        ("skelem", {"steps": 500}, r"--steps \(500\) cannot exceed --t0 \(400\)."),
    ],
)
def test_sampling_is_checked_against_the_model_schedule(
    method: str, values: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_sampling(RestoreOptions(**values), method, DiffusionConfig())
    check_sampling(RestoreOptions(**values), "skeleton", DiffusionConfig())  # not sampled: no rule


def test_detail_knob_is_checked_in_one_sentence() -> None:
    import pytest

    from skelem.config.restore import RestoreOptions
    from skelem.errors import ConfigError

    assert RestoreOptions(detail=0.3).detail == 0.3
    with pytest.raises(ConfigError, match=r"^--detail must be between 0 and 1, got 1.5\.$"):
        RestoreOptions(detail=1.5)


def test_slow_modes_are_checked_in_one_sentence() -> None:
    assert RestoreOptions().slow_modes is None
    assert RestoreOptions(slow_modes=2).slow_modes == 2
    with pytest.raises(ConfigError, match=r"^--slow-modes must be 0 or more, got -1\.$"):
        RestoreOptions(slow_modes=-1)


@pytest.mark.parametrize("flag", ["detail", "slow_modes"])
def test_the_joint_sampler_refuses_the_detail_knobs_it_does_not_apply(flag: str) -> None:
    """``--fuse steps`` samples both passes jointly without the detail blend: asking for
    ``--detail`` or ``--slow-modes`` with it is refused, not silently ignored."""
    from skelem.config.models import DiffusionConfig
    from skelem.config.restore import check_sampling

    value = {"detail": 0.5, "slow_modes": 1}[flag]
    cli_flag = "--" + flag.replace("_", "-")
    joint = RestoreOptions(method="skelem", fuse="steps", **{flag: value})
    with pytest.raises(ConfigError, match=f"{cli_flag} applies to the default fusion"):
        check_sampling(joint, "skelem", DiffusionConfig())
    for fine in ({"fuse": "end"}, {"fuse": "steps", "planes": "xz"}):
        check_sampling(RestoreOptions(**fine, **{flag: value}), "skelem", DiffusionConfig())
    check_sampling(RestoreOptions(fuse="steps"), "skelem", DiffusionConfig())
