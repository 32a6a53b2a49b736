"""The ``restore`` command; its flags are the fields of ``skelem.config.restore.RestoreOptions``.

The choices and defaults come from :mod:`skelem.config.choices` (no pydantic or torch at import, so
``skelem restore --help`` is instant); :func:`options_from_flags` builds the validated options.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import click

from skelem.cli.common import (
    check_outputs_apart,
    command_line,
    handle_errors,
    make_progress,
    open_volume_arg,
    parse_triple,
)
from skelem.config.choices import (
    BACKENDS,
    METHODS,
    RESTORE_DEFAULTS,
    Fuse,
    Normalize,
    OutputDtype,
    Planes,
)
from skelem.errors import SkelEMError

_D = RESTORE_DEFAULTS

#: The restore command's options in --help order. ``None``: not a restore option (where to read,
#: write, and how the process runs); otherwise the click parameter becomes that option field.
_FLAGS: list[tuple[str | None, Callable[[Callable], Callable]]] = [
    (
        None,
        click.option(
            "--model",
            "model_dir",
            help="Model directory from `skelem train` (not needed for interpolation).",
        ),
    ),
    (
        None,
        click.option(
            "-o",
            "--output",
            required=True,
            help="Output .tif, .ome.zarr (streamed, resumable), .h5 or .npy.",
        ),
    ),
    (
        "method",
        click.option(
            "--method",
            type=click.Choice(list(METHODS)),
            help="Default: skelem when the model has a refiner, else skeleton; "
            "cubic without a model.",
        ),
    ),
    (
        None,
        click.option(
            "--factor",
            type=float,
            help="Anisotropy factor (default: the model's, or the voxel size).",
        ),
    ),
    (
        "steps",
        click.option(
            "--steps", type=int, help="Reverse diffusion steps (skelem: 5, diffusion: 50)."
        ),
    ),
    ("t0", click.option("--t0", type=int, help="Start timestep of truncated sampling (skelem).")),
    (
        "eta",
        click.option(
            "--eta",
            type=float,
            help="Sampling stochasticity, with --t0 the fidelity-perception knob: 0 "
            "deterministic (closest to the truth on average), 1 fresh noise at every move "
            "(more texture; default: the model's).",
        ),
    ),
    (
        "detail",
        click.option(
            "--detail",
            type=float,
            help="Fidelity-perception knob of skelem, 0 to 1: 0 the deterministic skeleton plus "
            "the measured residual prior (best PSNR, no sampling), 1 all the detail the refiner "
            "draws between the measured slices (default: the model's, or 0 when the refiner "
            "draws far more detail on the volume's own lateral slices than on its training "
            "data: the pretrained model's FIB-SEM, or the volume a trained model learned from).",
        ),
    ),
    (
        "slow_modes",
        click.option(
            "--slow-modes",
            type=int,
            help="skelem: remove this many of the slowest axial modes of the sampled detail "
            "between every two measured slices (less invented shading, more PSNR for the same "
            "texture; default: the model's, 2 for models of factor 8 or more, else 0).",
        ),
    ),
    (
        "tta",
        click.option(
            "--tta/--no-tta",
            default=_D["tta"],
            show_default=True,
            help="Average the skeleton over the 4 flips of each slice (4 skeleton passes).",
        ),
    ),
    (
        "use_prior",
        click.option(
            "--no-prior",
            is_flag=True,
            help="Start from noise only, without the measured residual prior.",
        ),
    ),
    (
        "use_consistency",
        click.option(
            "--no-consistency",
            is_flag=True,
            help="Do not enforce the measured slices after each step.",
        ),
    ),
    (
        "aligned",
        click.option(
            "--unaligned", is_flag=True, help="Use the refiner from before alignment (ablation)."
        ),
    ),
    (
        "planes",
        click.option(
            "--planes",
            type=click.Choice(list(get_args(Planes))),
            default=_D["planes"],
            show_default=True,
            help="Restore along both cross-planes and fuse them, or one plane "
            "only (half the time).",
        ),
    ),
    (
        "fuse",
        click.option(
            "--fuse",
            type=click.Choice(list(get_args(Fuse))),
            default=_D["fuse"],
            show_default=True,
            help="skelem, both planes: average the XZ and YZ passes at the end, or "
            "after every sampling step (the passes then agree and keep all their sampled "
            "detail: --detail and --slow-modes apply to 'end' only; holds more memory "
            "per block).",
        ),
    ),
    ("seed", click.option("--seed", type=int, default=_D["seed"], show_default=True)),
    (
        "samples",
        click.option(
            "--samples",
            type=int,
            default=_D["samples"],
            show_default=True,
            help="K > 1: mean of K seeds, std written beside.",
        ),
    ),
    ("block_shape", click.option("--block", help="Output block Z,Y,X for tiled processing.")),
    (
        "batch_size",
        click.option(
            "--batch-size",
            type=int,
            default=_D["batch_size"],
            show_default=True,
            help="Slices per network call at most (on CPU also at most 2^17 pixels per call).",
        ),
    ),
    (
        "dtype",
        click.option(
            "--dtype",
            type=click.Choice(list(get_args(OutputDtype))),
            default=_D["dtype"],
            show_default=True,
        ),
    ),
    (
        "normalize",
        click.option(
            "--normalize",
            type=click.Choice(list(get_args(Normalize))),
            default=_D["normalize"],
            show_default=True,
            help="Intensity normalisation: the model's training statistics, or "
            "the input's own percentiles (for a volume from another instrument "
            "or modality).",
        ),
    ),
    ("device", click.option("--device", default=_D["device"], show_default=True)),
    (
        "backend",
        click.option(
            "--backend",
            type=click.Choice(list(BACKENDS)),
            default=_D["backend"],
            show_default=True,
            help="How the networks run: PyTorch (channels_last layout), PyTorch in the plain "
            "layout, or ONNX Runtime on the CPU (needs pip install onnxruntime onnx).",
        ),
    ),
    (None, click.option("--voxel-size", help="Override the voxel size Z,Y,X.")),
    (
        None,
        click.option(
            "--workers",
            type=int,
            help="OME-Zarr outputs: worker processes of the local Dask cluster started for the "
            "run, one thread each (default: one per core).",
        ),
    ),
    (
        None,
        click.option(
            "--scheduler",
            metavar="ADDRESS",
            help="OME-Zarr outputs: run the blocks on the running Dask cluster whose scheduler "
            "is at ADDRESS (tcp://HOST:PORT) instead of a local one; see docs/cluster.md.",
        ),
    ),
    (None, click.option("--overwrite", is_flag=True)),
    (None, click.option("-q", "--quiet", is_flag=True)),
]

#: Flags whose value is the negation of their option field.
_NEGATED = {"no_prior": "use_prior", "no_consistency": "use_consistency", "unaligned": "aligned"}
_PARAM = {"block": "block_shape", **_NEGATED}  # click parameter -> option field, where they differ


def restore_flags(func: Callable) -> Callable:
    """Add the restore command's options (:data:`_FLAGS`) to ``func``, in --help order.

    Parameters
    ----------
    func : callable
        The command's body.

    Returns
    -------
    callable
    """
    for _, flag in reversed(_FLAGS):
        func = flag(func)
    return func


def options_from_flags(flags: dict[str, Any]):
    """The validated :class:`~skelem.config.restore.RestoreOptions` of the command's flags.

    ``--block`` is left out: it is parsed once the model and the volume
    are open (so their errors come first, as they always have).

    Parameters
    ----------
    flags : dict
        Click parameter name -> value, for the restore options' parameters.

    Returns
    -------
    RestoreOptions

    Raises
    ------
    SkelEMError
        A value breaks a rule (one sentence naming the flag).
    """
    from skelem.config.restore import RestoreOptions

    values = {
        _PARAM.get(param, param): (not value) if param in _NEGATED else value
        for param, value in flags.items()
        if param != "block"
    }
    return RestoreOptions(**values)


INTERPOLATIONS = ("nearest", "linear", "cubic")


def _pretrained_model(vol, factor: float | None, options, quiet: bool) -> str | None:
    """Without ``--model``: the shipped pretrained model of the volume's factor, said so on
    stderr (and the input's own intensity percentiles unless ``--normalize`` is given); None
    (cubic interpolation) when no method was asked for and none is shipped for the factor."""
    from skelem.models.pretrained import (
        PRETRAINED_NORMALIZE,
        pretrained_factors,
        pretrained_model_dir,
    )

    resolved = vol.anisotropy_factor(factor)
    if options.method is None and resolved not in pretrained_factors():
        if not quiet:
            click.echo(
                f"no --model and no pretrained model for factor {resolved}: cubic interpolation",
                err=True,
            )
        return None
    directory = pretrained_model_dir(resolved)
    source = click.get_current_context().get_parameter_source("normalize")
    if source is None or source.name == "DEFAULT":
        options.normalize = PRETRAINED_NORMALIZE
    if not quiet:
        click.echo(
            f"no --model given: using the pretrained FIB-SEM x{resolved} model shipped with "
            f"SkelEM ({directory}), intensities normalised by the "
            f"{'input' if options.normalize == 'input' else 'model'}'s percentiles; it learned "
            "from electron microscopy only (a detail check keeps its refiner's texture out of "
            "volumes unlike it); for other data, train on your volume (skelem train)",
            err=True,
        )
    return str(directory)


def _check_detail(vol, artifact, options, quiet: bool, pretrained: bool):
    """Without ``--detail``: how much detail the model's refiner (the pretrained one without
    ``--model``) draws on the volume's own lateral slices; restore at detail 0 when the volume
    does not look like the model's training data (:mod:`skelem.inference.detail_check`), said
    so on stderr. Returns the check (None when none ran), for the outputs' metadata."""
    from skelem.inference.detail_check import check_model_detail, check_pretrained_detail

    check = (check_pretrained_detail if pretrained else check_model_detail)(vol, artifact, options)
    if check is not None and (not quiet or not check.passed):
        said = check.message()
        if not check.passed and options.samples > 1:
            said += " With no sampled detail the seeds of --samples agree: the std output is 0."
        click.echo(said, err=True)
    return check


@click.command()
@click.argument("volume")
@restore_flags
@handle_errors
def restore(
    volume: str,
    model_dir: str | None,
    output: str,
    factor: float | None,
    voxel_size: str | None,
    workers: int | None,
    scheduler: str | None,
    overwrite: bool,
    quiet: bool,
    **flags: Any,
) -> None:
    """Restore VOLUME to isotropic resolution along Z."""
    from skelem.inference.outputs import is_zarr, std_output_path
    from skelem.io.writers import check_output_format

    check_output_format(output)
    std_out = std_output_path(output) if flags["samples"] > 1 else None
    check_outputs_apart(
        (output, str(std_out) if std_out else None),
        (("input volume", volume), ("model folder", model_dir)),
    )
    if workers is not None and workers < 1:
        raise SkelEMError(f"--workers must be at least 1, got {workers}.")
    if scheduler is not None and workers is not None:
        raise SkelEMError("--workers starts a local cluster; it cannot go with --scheduler.")
    if (workers is not None or scheduler is not None) and not is_zarr(output):
        raise SkelEMError(
            "--workers and --scheduler run OME-Zarr outputs on Dask; write to a .ome.zarr "
            "output to use them."
        )

    from skelem.config.restore import check_sampling
    from skelem.inference.dask_runner import DaskSettings
    from skelem.inference.methods import default_method
    from skelem.inference.restore import restore_to_file
    from skelem.models.artifact import load_artifact

    options = options_from_flags(flags)
    vol = None
    pretrained = False
    if model_dir is None and options.method not in INTERPOLATIONS:
        vol = open_volume_arg(volume, voxel_size)
        model_dir = _pretrained_model(vol, factor, options, quiet)
        pretrained = model_dir is not None
    artifact = load_artifact(model_dir) if model_dir else None
    if artifact is not None:
        method = options.method or default_method(artifact)
        check_sampling(options, method, artifact.config.diffusion)
    if vol is None:
        vol = open_volume_arg(volume, voxel_size)
    check = _check_detail(vol, artifact, options, quiet, pretrained) if artifact else None
    options.block_shape = parse_triple(flags["block"], "--block", int)  # validated on assignment
    if std_out is not None and std_out.exists() and not overwrite:
        raise SkelEMError(f"{std_out} exists; pass --overwrite to replace it.")  # before the work
    with make_progress(quiet) as progress:
        summary = restore_to_file(
            vol,
            output,
            artifact,
            factor=factor,
            options=options,
            overwrite=overwrite,
            progress=progress,
            std_output=std_out,
            command_line=command_line(),
            dask=DaskSettings(
                workers=workers,
                scheduler=scheduler,
                announce=None if quiet else lambda line: click.echo(line, err=True),
            ),
            detail_check=check.as_dict() if check is not None else None,
        )
    shape = " x ".join(map(str, summary["shape"]))
    click.echo(
        f"wrote {shape} ({summary['method']}, factor {summary['factor']}) to {output}"
        + (f"; per-voxel std in {std_out}" if std_out else "")
    )
