"""The ``train``, ``restore``, ``evaluate``, ``benchmark`` and ``demo`` commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from skelem.cli.main import EXIT_MORE_BLOCKS, _handle_errors, _open, _triple, cli, run_in_rounds
from skelem.errors import SkelEMError


def _progress(quiet: bool):
    from skelem.cli.progress import TqdmProgress

    return TqdmProgress(enabled=not quiet)


def _make_config(config_file: str | None, volume, factor: float | None, profile: str | None,
                 iterations: int | None, patch_size: int | None, seed: int | None, device: str):
    from skelem.config.models import ExperimentConfig, build_config, load_config, parse_profile

    base = (load_config(config_file) if config_file else ExperimentConfig()).model_dump()
    deg = dict(base.get("degradation", {}))
    # model_dump() always holds a factor (default 4): only a factor written in the file itself
    # may stand in for --factor; otherwise it comes from the volume's voxel size.
    in_file = (json.loads(Path(config_file).read_text()).get("degradation") or {}) if config_file else {}
    if factor is not None or "factor" not in in_file:
        deg["factor"] = volume.anisotropy_factor(factor)
    if profile is not None:
        for key in ("profile", "thickness", "sigma"):
            deg.pop(key, None)
        deg.update(parse_profile(profile))
    base["degradation"] = deg
    for stage in ("skeleton_training", "refiner_training", "alignment_training"):
        section = dict(base.get(stage, {}))
        if seed is not None:
            section["seed"] = seed
        if iterations is not None:
            section["iterations"] = iterations if stage != "alignment_training" else max(1, iterations // 10)
        if patch_size is not None:
            section["patch_size"] = patch_size if stage != "alignment_training" else max(32, patch_size // 2)
        base[stage] = section
    base["device"] = device
    return build_config(base)


@cli.command()
@click.argument("volume")
@click.option("-o", "--output", "model_dir", required=True, help="Model directory to create (or continue).")
@click.option("--factor", type=float, help="Anisotropy factor (default: from the voxel size).")
@click.option("--profile", help="Slice profile of the acquisition: none, box[:T], gaussian:SIGMA.")
@click.option("--iterations", type=int, help="Iterations of the skeleton and refiner stages (alignment: a tenth).")
@click.option("--patch-size", type=int, help="Training patch size in pixels (multiple of 8).")
@click.option("--stages", default="skeleton,refiner,alignment", show_default=True,
              help="Comma-separated stages: skeleton, refiner, alignment, diffusion-peer, or all.")
@click.option("--config", "config_file", help="JSON config file (see `skelem.config`); options override it.")
@click.option("--seed", type=int, help="Seed of every stage (default 0).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--voxel-size", help="Override the voxel size Z,Y,X.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@_handle_errors
def train(volume, model_dir, factor, profile, iterations, patch_size, stages, config_file, seed, device, voxel_size, quiet):
    """Train SkelEM on VOLUME itself (self-supervised; no ground truth needed)."""
    from skelem.training.pipeline import parse_stages, train_model

    vol = _open(volume, voxel_size)
    cfg = _make_config(config_file, vol, factor, profile, iterations, patch_size, seed, device)
    stage_list = parse_stages(stages)
    progress = _progress(quiet)
    try:
        artifact = train_model(vol, model_dir, cfg, stage_list, progress)
    finally:
        progress.close()
    secs = artifact.provenance.get("training_seconds", {})
    click.echo(f"model in {model_dir}: stages {', '.join(artifact.stages)} "
               f"(factor {artifact.factor}; training time {sum(secs.values()):.0f} s)")


def _check_sampling(artifact, method: str | None, steps: int | None, t0: int | None) -> None:
    """Refuse --steps/--t0 the model's noise schedule cannot follow, before any work."""
    from skelem.inference.restore import default_method

    if artifact is None or (steps is None and t0 is None):
        return
    diffusion = artifact.config.diffusion
    method = method or default_method(artifact)
    if method == "diffusion" and steps is not None and steps > diffusion.timesteps:
        raise SkelEMError(f"--steps {steps} exceeds the model's {diffusion.timesteps} diffusion timesteps.")
    if method != "skelem":
        return
    start = t0 if t0 is not None else diffusion.t0
    if not 1 <= start < diffusion.timesteps:
        raise SkelEMError(f"--t0 must be between 1 and {diffusion.timesteps - 1} for this model, got {start}.")
    count = steps if steps is not None else diffusion.steps
    if count > start:
        raise SkelEMError(f"--steps ({count}) cannot exceed --t0 ({start}).")


@cli.command()
@click.argument("volume")
@click.option("--model", "model_dir", help="Model directory from `skelem train` (not needed for interpolation).")
@click.option("-o", "--output", required=True, help="Output .tif, .ome.zarr (streamed, resumable), .h5 or .npy.")
@click.option("--method", type=click.Choice(["skelem", "skeleton", "diffusion", "cubic", "linear", "nearest"]),
              help="Default: skelem when the model has a refiner, else skeleton; cubic without a model.")
@click.option("--factor", type=float, help="Anisotropy factor (default: the model's, or the voxel size).")
@click.option("--steps", type=int, help="Reverse diffusion steps (skelem: 5, diffusion: 50).")
@click.option("--t0", type=int, help="Start timestep of truncated sampling (skelem).")
@click.option("--no-prior", is_flag=True, help="Start from noise only, without the measured residual prior.")
@click.option("--no-consistency", is_flag=True, help="Do not enforce the measured slices after each step.")
@click.option("--unaligned", is_flag=True, help="Use the refiner from before alignment (ablation).")
@click.option("--planes", type=click.Choice(["both", "xz", "yz"]), default="both", show_default=True,
              help="Restore along both cross-planes and fuse them, or one plane only (half the time).")
@click.option("--fuse", type=click.Choice(["end", "steps"]), default="end", show_default=True,
              help="skelem, both planes: average the XZ and YZ passes at the end, or after every sampling "
              "step (the passes then agree; holds more memory per block).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--samples", type=int, default=1, show_default=True, help="K > 1: mean of K seeds, std written beside.")
@click.option("--block", help="Output block Z,Y,X for tiled processing.")
@click.option("--batch-size", type=int, default=8, show_default=True,
              help="Slices per network call at most (on CPU also at most 2^17 pixels per call).")
@click.option("--dtype", type=click.Choice(["input", "float32"]), default="input", show_default=True)
@click.option("--normalize", type=click.Choice(["model", "input"]), default="model", show_default=True,
              help="Intensity normalisation: the model's training statistics, or the input's own "
              "percentiles (for a volume from another instrument or modality).")
@click.option("--device", default="auto", show_default=True)
@click.option("--voxel-size", help="Override the voxel size Z,Y,X.")
@click.option("--blocks-per-process", type=int, default=64, show_default=True,
              help="OME-Zarr outputs: restore in rounds of this many blocks, each in a fresh process, so "
              "memory stays bounded whatever the volume's size (0: everything in this process).")
@click.option("--max-blocks", type=int, hidden=True, help="Internal: restore at most this many blocks, then exit 75.")
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
@_handle_errors
def restore(volume, model_dir, output, method, factor, steps, t0, no_prior, no_consistency, unaligned, planes, fuse, seed,
            samples, block, batch_size, dtype, normalize, device, voxel_size, blocks_per_process, max_blocks, overwrite, quiet):
    """Restore VOLUME to isotropic resolution along Z."""
    if blocks_per_process < 0:
        raise SkelEMError("--blocks-per-process must be 0 or more.")
    if max_blocks is not None and max_blocks < 1:
        raise SkelEMError("--max-blocks must be at least 1.")
    streamed = Path(output).suffix == ".zarr"  # as restore._is_zarr, without importing torch here
    argv = (click.get_current_context().find_root().obj or {}).get("argv")
    if streamed and blocks_per_process and max_blocks is None and argv is not None:
        sys.exit(run_in_rounds(argv, blocks_per_process))

    from skelem.inference.restore import RestoreOptions, restore_to_file
    from skelem.models.artifact import load_artifact

    if samples < 1:
        raise SkelEMError("--samples must be at least 1.")
    if steps is not None and steps < 1:
        raise SkelEMError("--steps must be at least 1.")
    if batch_size < 1:
        raise SkelEMError("--batch-size must be at least 1.")
    artifact = load_artifact(model_dir) if model_dir else None
    _check_sampling(artifact, method, steps, t0)
    vol = _open(volume, voxel_size)
    options = RestoreOptions(method=method, steps=steps, t0=t0, use_prior=not no_prior,
                             use_consistency=not no_consistency, aligned=not unaligned, planes=planes, fuse=fuse, seed=seed, samples=samples,
                             block_shape=_triple(block, "--block", int), normalize=normalize, device=device,
                             batch_size=batch_size)
    std_out = None
    if samples > 1:
        out = Path(output)
        suffix = ".ome.zarr" if out.name.endswith(".ome.zarr") else out.suffix
        std_out = out.with_name(out.name.removesuffix(suffix) + "_std" + suffix)
        if std_out.exists() and not overwrite:  # refuse before hours of work, not after writing OUTPUT
            raise SkelEMError(f"{std_out} exists; pass --overwrite to replace it.")
    progress = _progress(quiet)
    try:
        summary = restore_to_file(vol, output, artifact, factor, options, dtype, overwrite, progress, std_out, max_blocks)
    finally:
        progress.close()
    if not summary["complete"]:
        if not quiet:
            click.echo(f"restored {summary['blocks_done']} of {summary['blocks']} blocks; "
                       "continuing in a new process", err=True)
        sys.exit(EXIT_MORE_BLOCKS)
    click.echo(f"wrote {' x '.join(map(str, summary['shape']))} ({summary['method']}, factor {summary['factor']}) to {output}"
               + (f"; per-voxel std in {std_out}" if std_out else ""))


@cli.command()
@click.argument("prediction")
@click.option("--reference", required=True, help="Isotropic ground-truth volume.")
@click.option("--labels", help="Instance labels of the reference for the membrane-segmentation score.")
@click.option("--membrane-model", help="Membrane predictor directory (`skelem benchmark --membrane-train` "
              "writes REPORT/membrane), trained on another volume; needed with --labels.")
@click.option("--factor", type=float, help="Anisotropy factor of the acquisition (for measured-slice errors).")
@click.option("--acquired", help="The anisotropic input volume (for the measured-slice error).")
@click.option("--border", type=int, default=8, show_default=True, help="Voxels excluded at every border.")
@click.option("--json", "json_out", help="Write all measures to this JSON file.")
@_handle_errors
def evaluate(prediction, reference, labels, membrane_model, factor, acquired, border, json_out):
    """Compare a restored PREDICTION with an isotropic reference."""
    from skelem.evaluation.evaluate import evaluate_volumes, format_summary

    membrane = None
    if membrane_model:
        from skelem.evaluation.membrane import load_membrane_predictor

        membrane = load_membrane_predictor(membrane_model)
    result = evaluate_volumes(prediction, reference, labels=labels, factor=factor, acquired=acquired,
                              border=border, membrane=membrane)
    click.echo(format_summary(result))
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2, default=float))
        click.echo(f"measures written to {json_out}")


@cli.command()
@click.option("-o", "--output", "report_dir", required=True, help="Report directory.")
@click.option("--data", multiple=True, help="Isotropic volume(s) to benchmark on (default: the embedded sample).")
@click.option("--factors", default="4", show_default=True, help="Comma-separated anisotropy factors.")
@click.option("--quick", is_flag=True, help="Small budgets: finishes in minutes on a laptop CPU.")
@click.option("--labels", help="Instance labels of the (single) --data volume, for segmentation scores.")
@click.option("--membrane-train", help="Isotropic volume + labels (VOL,LABELS) to train the membrane predictor on.")
@click.option("--paired", help="Paired benchmark: ANISO,ISO (a real anisotropic acquisition and a co-registered isotropic reference).")
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
@_handle_errors
def benchmark(report_dir, data, factors, quick, labels, membrane_train, paired, overwrite, quiet):
    """Simulate anisotropy, train every method, restore, evaluate, and write a report."""
    from skelem.evaluation.benchmark import BenchmarkSpec, run_benchmark

    spec = BenchmarkSpec.from_cli(report_dir, data, factors, quick, labels, membrane_train, paired, overwrite)
    progress = _progress(quiet)
    try:
        summary = run_benchmark(spec, progress)
    finally:
        progress.close()
    click.echo(summary)


@cli.command()
@click.option("-o", "--output", "out_dir", default="skelem-demo", show_default=True)
@click.option("--factor", type=int, default=4, show_default=True)
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
@_handle_errors
def demo(out_dir, factor, overwrite, quiet):
    """The whole job on the embedded FIB-SEM sample: simulate x4, train, restore, evaluate, report."""
    from skelem.evaluation.benchmark import run_demo

    progress = _progress(quiet)
    try:
        summary = run_demo(out_dir, factor, overwrite, progress)
    finally:
        progress.close()
    click.echo(summary)
