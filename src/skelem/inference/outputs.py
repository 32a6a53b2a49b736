"""Output kinds by name: which outputs are streamed, and where the per-voxel std goes.

Torch-free, so the CLI can ask before it imports the restoration machinery.
"""

from __future__ import annotations

from pathlib import Path


def is_zarr(path: str | Path) -> bool:
    """Whether ``path`` names an OME-Zarr store (``.zarr`` or ``.ome.zarr``), streamed by restore.

    Parameters
    ----------
    path : str or Path
        An output path.

    Returns
    -------
    bool
    """
    return Path(path).suffix == ".zarr"  # also ".ome.zarr"


def std_output_path(output: str | Path) -> Path:
    """Where the per-voxel std of a ``samples > 1`` output goes: ``NAME_std`` beside it.

    Parameters
    ----------
    output : str or Path
        The output of the mean, e.g. ``out.ome.zarr`` or ``out.tif``.

    Returns
    -------
    Path
        E.g. ``out_std.ome.zarr`` or ``out_std.tif``.
    """
    out = Path(output)
    suffix = ".ome.zarr" if out.name.endswith(".ome.zarr") else out.suffix
    return out.with_name(out.name.removesuffix(suffix) + "_std" + suffix)
