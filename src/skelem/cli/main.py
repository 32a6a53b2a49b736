"""The ``skelem`` command. Torch and heavy modules are imported inside commands so ``--help`` is instant."""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import click

from skelem import __version__
from skelem.errors import SkelEMError

EXIT_INPUT_ERROR = 2


def _handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print user-facing errors as one line and exit 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SkelEMError as err:
            click.echo(f"Error: {err}", err=True)
            sys.exit(EXIT_INPUT_ERROR)
        except KeyboardInterrupt:
            click.echo("Interrupted; run the same command again to continue where it stopped.", err=True)
            sys.exit(130)
        except MemoryError:
            click.echo("Error: out of memory; use a smaller --block or --batch-size.", err=True)
            sys.exit(1)

    return wrapper


def _triple(text: str | None, name: str, kind: type = float) -> tuple | None:
    if text is None:
        return None
    parts = text.replace("x", ",").split(",")
    try:
        values = tuple(kind(p) for p in parts)
    except ValueError:
        raise SkelEMError(f"{name} must be three comma-separated numbers Z,Y,X, got {text!r}.") from None
    if len(values) != 3 or any(v <= 0 for v in values):
        raise SkelEMError(f"{name} must be three positive numbers Z,Y,X, got {text!r}.")
    return values


def _open(path: str, voxel_size: str | None = None):
    from skelem.io import open_volume

    return open_volume(path, voxel_size=_triple(voxel_size, "--voxel-size"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skelem")
@click.option("-v", "--verbose", is_flag=True, help="Show log messages.")
def cli(verbose: bool) -> None:
    """SkelEM: isotropic volumes from anisotropic microscopy, trained on your own data."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@click.argument("volume")
@click.option("--voxel-size", help="Override the voxel size, Z,Y,X in the file's unit.")
@_handle_errors
def info(volume: str, voxel_size: str | None) -> None:
    """Shape, dtype, voxel size, anisotropy and intensity range of VOLUME."""
    from skelem.io.validate import intensity_summary

    vol = _open(volume, voxel_size)
    lo, hi, non_finite = intensity_summary(vol)
    click.echo(f"volume:      {vol.source}")
    click.echo(f"shape:       {' x '.join(map(str, vol.shape))} (Z, Y, X)")
    click.echo(f"dtype:       {vol.dtype}")
    if vol.voxel_size is None:
        click.echo("voxel size:  unknown (pass --voxel-size or --factor)")
    else:
        z, y, x = vol.voxel_size
        click.echo(f"voxel size:  {z:g} x {y:g} x {x:g} {vol.unit} (Z, Y, X)")
        click.echo(f"anisotropy:  {vol.anisotropy:.3g} (Z / X)")
    click.echo(f"intensity:   {lo:g} .. {hi:g}" + (" (finite values)" if non_finite else ""))
    if non_finite:
        click.echo(f"non-finite:  {non_finite} voxels are NaN or Inf; train and restore refuse this volume "
                   "until they are replaced (e.g. by the background value)")


@cli.command()
@click.option("-o", "--output", required=True, help="Output file (.tif, .ome.zarr, .h5, .npy).")
@click.option("--kind", type=click.Choice(["em", "lm"]), default="em", show_default=True)
@click.option("--shape", default="64,128,128", show_default=True, help="Z,Y,X in voxels.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--voxel-size", default=None, help="Z,Y,X in micrometer (default 0.01 for EM, 0.1 for LM).")
@click.option("--labels", "labels_out", default=None, help="Also write the instance labels here.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@_handle_errors
def phantom(output: str, kind: str, shape: str, seed: int, voxel_size: str | None, labels_out: str | None, overwrite: bool) -> None:
    """Write a deterministic EM- or LM-like phantom (isotropic)."""
    import numpy as np

    from skelem.data.phantoms import em_phantom, lm_phantom
    from skelem.io import write_volume

    dims = _triple(shape, "--shape", int)
    assert dims is not None
    if min(dims) < 8:
        raise SkelEMError("--shape must be at least 8 voxels along every axis.")
    vs = _triple(voxel_size, "--voxel-size") or ((0.01,) * 3 if kind == "em" else (0.1,) * 3)
    image, labels = (em_phantom if kind == "em" else lm_phantom)(shape=dims, seed=seed)
    data = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    meta = {"phantom": kind, "seed": seed}
    write_volume(output, data, voxel_size=vs, overwrite=overwrite, metadata=meta)
    if labels_out:
        write_volume(labels_out, labels, voxel_size=vs, overwrite=overwrite, metadata=meta)
    click.echo(f"wrote {kind.upper()} phantom {dims[0]}x{dims[1]}x{dims[2]} to {output}")


@cli.command()
@click.argument("volume")
@click.option("-o", "--output", required=True)
@click.option("--factor", type=float, required=True, help="Anisotropy factor s (integer 2-16).")
@click.option("--profile", default="none", show_default=True, help="none, box, box:THICKNESS or gaussian:SIGMA (voxels).")
@click.option("--offset", type=int, default=0, show_default=True, help="Index of the first kept slice.")
@click.option("--voxel-size", default=None, help="Override the input voxel size Z,Y,X.")
@click.option("--overwrite", is_flag=True)
@_handle_errors
def simulate(volume: str, output: str, factor: float, profile: str, offset: int, voxel_size: str | None, overwrite: bool) -> None:
    """Simulate an anisotropic acquisition from an isotropic VOLUME (keeps every s-th slice)."""
    import numpy as np

    from skelem.config.models import DegradationConfig, build_sub_config, parse_profile
    from skelem.data.degradation import degrade_with
    from skelem.io import write_volume
    from skelem.io.validate import validate_volume

    deg = build_sub_config(DegradationConfig, factor=factor, offset=offset, **parse_profile(profile))
    vol = _open(volume, voxel_size)
    validate_volume(vol, min_slices=2 * deg.factor)
    data = vol.read()
    out = degrade_with(data.astype("float32"), deg, axis=0)
    if data.dtype.kind in "ui":
        limits = np.iinfo(data.dtype)
        out = np.clip(np.round(out), limits.min, limits.max)
    out = out.astype(data.dtype)
    vs = vol.voxel_size or (1.0, 1.0, 1.0)
    new_vs = (vs[0] * deg.factor, vs[1], vs[2])
    write_volume(output, out, voxel_size=new_vs, unit=vol.unit, overwrite=overwrite,
                 metadata={"simulated_from": vol.source, "degradation": deg.model_dump()})
    click.echo(f"wrote {out.shape[0]} slices (every {deg.factor}th, profile {deg.profile_string()}) to {output}; "
               f"voxel size {new_vs[0]:g} x {new_vs[1]:g} x {new_vs[2]:g} {vol.unit}")


def main() -> None:
    """Entry point of the ``skelem`` console script."""
    # Use the group the commands registered on: under `python -m skelem.cli.main` this module is
    # `__main__`, and its own `cli` is a different object from `skelem.cli.main.cli`.
    from skelem.cli import commands  # registers train/restore/evaluate/benchmark/demo

    # the arguments, for commands that continue their work in fresh processes (restore in rounds)
    commands.cli(prog_name="skelem", obj={"argv": sys.argv[1:]})


EXIT_MORE_BLOCKS = 75  # a restore round stopped after its blocks; more remain (EX_TEMPFAIL)


def run_in_rounds(argv: list[str], blocks: int) -> int:
    """Run ``skelem ARGV --max-blocks BLOCKS`` in fresh processes until one finishes; its exit code.

    Each round restores up to ``blocks`` blocks of a streamed output and exits; the next resumes
    from the progress file. The memory a process gathers from block to block (native allocator
    growth, ~0.8 MiB per block measured here) is returned to the system at every round.
    """
    cmd = [sys.executable, "-m", "skelem.cli.main", *argv, "--max-blocks", str(blocks)]
    watch = functools.partial(_die_with_parent, os.getpid()) if sys.platform == "linux" else None
    while True:
        child = subprocess.Popen(cmd, preexec_fn=watch)
        try:
            code = child.wait()
        except KeyboardInterrupt:  # the child got the same signal: let it stop cleanly and report
            child.wait()
            return 130
        if code != EXIT_MORE_BLOCKS:
            return code if code >= 0 else 128 - code


def _die_with_parent(parent: int) -> None:
    """In a round's process (Linux): be killed when the parent dies, so that a killed ``skelem
    restore`` never leaves a round writing to the store while the next run resumes it."""
    import ctypes

    try:
        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


if __name__ == "__main__":
    main()
