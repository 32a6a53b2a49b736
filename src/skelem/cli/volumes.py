"""The ``info``, ``phantom`` and ``simulate`` commands: describe, make and degrade volumes."""

from __future__ import annotations

import click

from skelem.cli.common import check_outputs_apart, handle_errors, open_volume_arg, parse_triple
from skelem.errors import SkelEMError


@click.command()
@click.argument("volume")
@click.option("--voxel-size", help="Override the voxel size, Z,Y,X in the file's unit.")
@handle_errors
def info(volume: str, voxel_size: str | None) -> None:
    """Shape, dtype, voxel size, anisotropy and intensity range of VOLUME."""
    from skelem.io.validate import intensity_summary

    vol = open_volume_arg(volume, voxel_size)
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
        click.echo(
            f"non-finite:  {non_finite} voxels are NaN or Inf; train and restore refuse this "
            "volume until they are replaced (e.g. by the background value)"
        )


@click.command()
@click.option("-o", "--output", required=True, help="Output file (.tif, .ome.zarr, .h5, .npy).")
@click.option("--kind", type=click.Choice(["em", "lm"]), default="em", show_default=True)
@click.option("--shape", default="64,128,128", show_default=True, help="Z,Y,X in voxels.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--voxel-size", default=None, help="Z,Y,X in micrometer (default 0.01 for EM, 0.1 for LM)."
)
@click.option("--labels", "labels_out", default=None, help="Also write the instance labels here.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@handle_errors
def phantom(
    output: str,
    kind: str,
    shape: str,
    seed: int,
    voxel_size: str | None,
    labels_out: str | None,
    overwrite: bool,
) -> None:
    """Write a deterministic EM- or LM-like phantom (isotropic)."""
    import numpy as np

    from skelem.data.phantoms import em_phantom, lm_phantom
    from skelem.io import write_volume
    from skelem.io.writers import check_output_format

    check_output_format(output)
    if labels_out:
        check_output_format(labels_out)
        check_outputs_apart([labels_out], [("image output", output)])
    dims = parse_triple(shape, "--shape", int)
    assert dims is not None
    if min(dims) < 8:
        raise SkelEMError("--shape must be at least 8 voxels along every axis.")
    vs = parse_triple(voxel_size, "--voxel-size") or ((0.01,) * 3 if kind == "em" else (0.1,) * 3)
    image, labels = (em_phantom if kind == "em" else lm_phantom)(shape=dims, seed=seed)
    data = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    meta = {"phantom": kind, "seed": seed}
    write_volume(output, data, voxel_size=vs, overwrite=overwrite, metadata=meta)
    if labels_out:
        write_volume(labels_out, labels, voxel_size=vs, overwrite=overwrite, metadata=meta)
    click.echo(f"wrote {kind.upper()} phantom {dims[0]}x{dims[1]}x{dims[2]} to {output}")


@click.command()
@click.argument("volume")
@click.option("-o", "--output", required=True)
@click.option("--factor", type=float, required=True, help="Anisotropy factor s (integer 2-16).")
@click.option(
    "--profile",
    default="none",
    show_default=True,
    help="none, box, box:THICKNESS or gaussian:SIGMA (voxels).",
)
@click.option(
    "--offset", type=int, default=0, show_default=True, help="Index of the first kept slice."
)
@click.option("--voxel-size", default=None, help="Override the input voxel size Z,Y,X.")
@click.option("--overwrite", is_flag=True)
@handle_errors
def simulate(
    volume: str,
    output: str,
    factor: float,
    profile: str,
    offset: int,
    voxel_size: str | None,
    overwrite: bool,
) -> None:
    """Simulate an anisotropic acquisition from an isotropic VOLUME (keeps every s-th slice)."""
    import numpy as np

    from skelem.config.models import DegradationConfig, build_sub_config, parse_profile
    from skelem.data.degradation import degrade_with
    from skelem.io import write_volume
    from skelem.io.validate import validate_volume
    from skelem.io.writers import check_output_format

    check_output_format(output)
    check_outputs_apart([output], [("input volume", volume)])
    deg = build_sub_config(
        DegradationConfig, factor=factor, offset=offset, **parse_profile(profile)
    )
    vol = open_volume_arg(volume, voxel_size)
    validate_volume(vol, min_slices=2 * deg.factor)
    data = vol.read()
    out = degrade_with(data.astype("float32"), deg, axis=0)
    if data.dtype.kind in "ui":
        limits = np.iinfo(data.dtype)
        out = np.clip(np.round(out), limits.min, limits.max)
    out = out.astype(data.dtype)
    vs = vol.voxel_size or (1.0, 1.0, 1.0)
    new_vs = (vs[0] * deg.factor, vs[1], vs[2])
    write_volume(
        output,
        out,
        voxel_size=new_vs,
        unit=vol.unit,
        overwrite=overwrite,
        metadata={"simulated_from": vol.source, "degradation": deg.model_dump()},
    )
    click.echo(
        f"wrote {out.shape[0]} slices (every {deg.factor}th, profile {deg.profile_string()}) "
        f"to {output}; "
        f"voxel size {new_vs[0]:g} x {new_vs[1]:g} x {new_vs[2]:g} {vol.unit}"
    )
