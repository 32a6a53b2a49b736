"""The ``train``, ``evaluate``, ``benchmark`` and ``demo`` commands.

``restore`` lives in :mod:`skelem.cli.restore`; ``info``, ``phantom``, ``simulate`` in
:mod:`skelem.cli.volumes`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from skelem.cli.common import check_outputs_apart, handle_errors, make_progress, open_volume_arg

#: ``skelem train --reference``'s neighbouring slices per side in the skeleton's input (a 2.5-D
#: input: +0.13 to +0.21 dB over none on FIB-SEM, benchmarks/RESULTS.md, "sixth round").
DEFAULT_REFERENCE_CONTEXT = 2


def _make_config(
    config_file: str | None,
    volume,
    factor: float | None,
    profile: str | None,
    iterations: int | None,
    patch_size: int | None,
    seed: int | None,
    device: str,
    context: int | None = None,
    with_references: bool = False,
):
    from skelem.config.models import (
        ExperimentConfig,
        build_config,
        load_config,
        parse_profile,
        sampling_defaults,
    )

    base = (load_config(config_file) if config_file else ExperimentConfig()).model_dump()
    # what the file itself says (model_dump() fills in every default)
    written = json.loads(Path(config_file).read_text()) if config_file else {}
    if context is None and "context" not in (written.get("skeleton") or {}):
        # neighbouring slices are learnt from true Z pairs only (benchmarks/RESULTS.md, sixth round)
        context = DEFAULT_REFERENCE_CONTEXT if with_references else 0
    if context is not None:
        base["skeleton"] = {**base["skeleton"], "context": context}
    deg = dict(base.get("degradation", {}))
    # model_dump() always holds a factor (default 4): only a factor written in the file itself
    # may stand in for --factor; otherwise it comes from the volume's voxel size.
    if factor is not None or "factor" not in (written.get("degradation") or {}):
        deg["factor"] = volume.anisotropy_factor(factor)
    if profile is not None:
        for key in ("profile", "thickness", "sigma"):
            deg.pop(key, None)
        deg.update(parse_profile(profile))
    base["degradation"] = deg
    # a new model's sampling defaults depend on its factor, below what the file itself says
    unset = {
        key: value
        for key, value in sampling_defaults(deg["factor"]).items()
        if key not in (written.get("diffusion") or {})
    }
    base["diffusion"] = {**base["diffusion"], **unset}
    for stage in ("skeleton_training", "refiner_training", "alignment_training"):
        section = dict(base.get(stage, {}))
        if seed is not None:
            section["seed"] = seed
        if iterations is not None:
            section["iterations"] = (
                iterations if stage != "alignment_training" else max(1, iterations // 10)
            )
        if patch_size is not None:
            section["patch_size"] = (
                patch_size if stage != "alignment_training" else max(32, patch_size // 2)
            )
        base[stage] = section
    base["device"] = device
    return build_config(base)


def _starting_model(init: str, cfg, model_dir: str):
    """The model ``--init`` names and the config with its network sizes (fine-tuning)."""
    from skelem.config.models import build_config
    from skelem.models.artifact import load_artifact
    from skelem.models.pretrained import pretrained_model_dir

    factor = cfg.degradation.factor
    directory = pretrained_model_dir(factor) if init == "pretrained" else Path(init)
    check_outputs_apart([model_dir], [("starting model", str(directory))])
    start = load_artifact(directory)
    if init == "pretrained":
        click.echo(f"fine-tuning the pretrained FIB-SEM x{factor} model ({directory})", err=True)
    sections = ("skeleton", "refiner", "diffusion_peer")
    data = {**cfg.model_dump(), **{k: getattr(start.config, k).model_dump() for k in sections}}
    return build_config(data), start


@click.command()
@click.argument("volume")
@click.option(
    "-o", "--output", "model_dir", required=True, help="Model directory to create (or continue)."
)
@click.option("--factor", type=float, help="Anisotropy factor (default: from the voxel size).")
@click.option("--profile", help="Slice profile of the acquisition: none, box[:T], gaussian:SIGMA.")
@click.option(
    "--iterations",
    type=int,
    help="Iterations of the skeleton and refiner stages (alignment: a tenth).",
)
@click.option("--patch-size", type=int, help="Training patch size in pixels (multiple of 8).")
@click.option(
    "--stages",
    default="skeleton,refiner,alignment",
    show_default=True,
    help="Comma-separated stages: skeleton, refiner, alignment, diffusion-peer, or all.",
)
@click.option(
    "--config", "config_file", help="JSON config file (see `skelem.config`); options override it."
)
@click.option("--seed", type=int, help="Seed of every stage (default 0).")
@click.option(
    "--init",
    "init",
    default="scratch",
    show_default=True,
    help="Start the networks from random weights (scratch), from the pretrained EM model of "
    "the factor shipped with SkelEM (pretrained), or from another model folder (fine-tuning).",
)
@click.option(
    "--reference",
    "references",
    multiple=True,
    help="An isotropic volume of similar data (repeatable): its XZ and YZ planes, degraded "
    "along Z, become the training pairs (true Z pairs; the volume's own XY pairs are not used "
    "unless the config's reference_share is below 1).",
)
@click.option(
    "--context",
    type=click.IntRange(0, 8),
    help="Neighbouring slices on each side in the skeleton's input, learnt from the --reference "
    f"volumes' true Z pairs (default: {DEFAULT_REFERENCE_CONTEXT} with --reference, else 0).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--voxel-size", help="Override the voxel size Z,Y,X.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@handle_errors
def train(
    volume,
    model_dir,
    factor,
    profile,
    iterations,
    patch_size,
    stages,
    config_file,
    seed,
    init,
    references,
    context,
    device,
    voxel_size,
    quiet,
):
    """Train SkelEM on VOLUME itself (self-supervised; no ground truth needed)."""
    from skelem.errors import ConfigError
    from skelem.training.pipeline import parse_stages, train_model

    # (not the --config file: continuing a model with its own model/config.json is fine)
    check_outputs_apart(
        [model_dir], [("input volume", volume), *(("reference volume", r) for r in references)]
    )
    vol = open_volume_arg(volume, voxel_size)
    refs = [open_volume_arg(r) for r in references]
    cfg = _make_config(
        config_file,
        vol,
        factor,
        profile,
        iterations,
        patch_size,
        seed,
        device,
        context,
        with_references=bool(references),
    )
    stage_list = parse_stages(stages)
    start = None
    if init != "scratch":
        cfg, start = _starting_model(init, cfg, model_dir)
    elif cfg.skeleton.context and not refs:
        raise ConfigError(
            "A skeleton that takes neighbouring slices (--context) learns them from the true Z "
            "pairs of an isotropic volume; give --reference ISO or use --context 0."
        )
    with make_progress(quiet) as progress:
        artifact = train_model(
            vol, model_dir, cfg, stage_list, progress, init_from=start, references=refs
        )
    from skelem.inference.detail_check import record_reference

    # what restore --model compares other volumes with
    if record_reference(artifact, vol) is None and "refiner" in artifact.stages:
        click.echo(
            "No detail-check reference was recorded (the slices are too small for its windows, "
            "or see -v): restore --model will not check other volumes against this model.",
            err=True,
        )
    secs = artifact.provenance.get("training_seconds", {})
    ratio = artifact.provenance.get("skeleton_error_vs_cubic")
    check = f"; skeleton error {ratio:.2f}x cubic's on training pairs" if ratio else ""
    click.echo(
        f"model in {model_dir}: stages {', '.join(artifact.stages)} "
        f"(factor {artifact.factor}; training time {sum(secs.values()):.0f} s{check})"
    )


@click.command()
@click.argument("prediction")
@click.option("--reference", required=True, help="Isotropic ground-truth volume.")
@click.option(
    "--labels", help="Instance labels of the reference for the membrane-segmentation score."
)
@click.option(
    "--membrane-model",
    help="Membrane predictor directory (`skelem benchmark --membrane-train` "
    "writes REPORT/membrane), trained on another volume; needed with --labels.",
)
@click.option(
    "--factor", type=float, help="Anisotropy factor of the acquisition (for measured-slice errors)."
)
@click.option("--acquired", help="The anisotropic input volume (for the measured-slice error).")
@click.option(
    "--border", type=int, default=8, show_default=True, help="Voxels excluded at every border."
)
@click.option("--json", "json_out", help="Write all measures to this JSON file.")
@handle_errors
def evaluate(prediction, reference, labels, membrane_model, factor, acquired, border, json_out):
    """Compare a restored PREDICTION with an isotropic reference."""
    from skelem.evaluation.evaluate import evaluate_volumes, format_summary

    check_outputs_apart(
        [json_out],
        [
            ("prediction", prediction),
            ("reference", reference),
            ("labels", labels),
            ("acquired volume", acquired),
            ("membrane model folder", membrane_model),
        ],
    )
    membrane = None
    if membrane_model:
        from skelem.evaluation.membrane import load_membrane_predictor

        membrane = load_membrane_predictor(membrane_model)
    result = evaluate_volumes(
        prediction,
        reference,
        labels=labels,
        factor=factor,
        acquired=acquired,
        border=border,
        membrane=membrane,
    )
    click.echo(format_summary(result))
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2, default=float))
        click.echo(f"measures written to {json_out}")


@click.command()
@click.option("-o", "--output", "report_dir", required=True, help="Report directory.")
@click.option(
    "--data",
    multiple=True,
    help="Isotropic volume(s) to benchmark on (default: the embedded sample).",
)
@click.option(
    "--factors", default="4", show_default=True, help="Comma-separated anisotropy factors."
)
@click.option("--quick", is_flag=True, help="Small budgets: finishes in minutes on a laptop CPU.")
@click.option(
    "--labels", help="Instance labels of the (single) --data volume, for segmentation scores."
)
@click.option(
    "--membrane-train",
    help="Isotropic volume + labels (VOL,LABELS) to train the membrane predictor on.",
)
@click.option(
    "--paired",
    help="Paired benchmark: ANISO,ISO (a real anisotropic acquisition and a co-registered "
    "isotropic reference).",
)
@click.option(
    "--pretrained",
    is_flag=True,
    help="Also restore with the shipped pretrained FIB-SEM model of each factor, zero-shot "
    "(rows skeleton-pretrained, skelem-pretrained). Only fair on data those models never saw.",
)
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
@handle_errors
def benchmark(
    report_dir, data, factors, quick, labels, membrane_train, paired, pretrained, overwrite, quiet
):
    """Simulate anisotropy, train every method, restore, evaluate, and write a report."""
    from skelem.evaluation.benchmark import BenchmarkSpec, run_benchmark

    listed = [p for text in (membrane_train, paired) if text for p in text.split(",")]
    check_outputs_apart(
        [report_dir],
        [("data volume", p) for p in data]
        + [("labels", labels)]
        + [("input volume", p.strip()) for p in listed if p.strip()],
    )
    spec = BenchmarkSpec.from_cli(
        report_dir, data, factors, quick, labels, membrane_train, paired, overwrite, pretrained
    )
    with make_progress(quiet) as progress:
        summary = run_benchmark(spec, progress)
    click.echo(summary)


@click.command()
@click.option("-o", "--output", "out_dir", default="skelem-demo", show_default=True)
@click.option("--factor", type=int, default=8, show_default=True)
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
@handle_errors
def demo(out_dir, factor, overwrite, quiet):
    """The whole job on the embedded FIB-SEM sample: simulate x8, train on it (quick preset),
    restore with every method and with the shipped pretrained model, evaluate, report."""
    from skelem.evaluation.benchmark import run_demo

    with make_progress(quiet) as progress:
        summary = run_demo(out_dir, factor, overwrite, progress)
    click.echo(summary)
