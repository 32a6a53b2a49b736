"""Where a volume is stored, and the rule that no output may replace or sit inside an input.

A volume URI names more than a file: ``in.h5:/raw`` lives in the whole file ``in.h5`` (an HDF5
output replaces the file), and ``in.ome.zarr/0`` lives in the store ``in.ome.zarr``. Outputs are
compared with inputs through :func:`storage_root`, on resolved paths (symlinks and ``..``
followed), so that ``skelem restore v.tif -o ./x/../v.tif --overwrite`` can never destroy ``v.tif``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from skelem.errors import InputError
from skelem.io.readers import _HDF5_URI, _ZARR_MARKERS


def _is_zarr_folder(path: Path) -> bool:
    if path.suffix.lower() == ".zarr":
        return True
    return path.is_dir() and any((path / marker).exists() for marker in _ZARR_MARKERS)


def resolve_uri(uri: str | Path) -> Path:
    """The absolute, resolved path of the file or folder a volume URI or output names.

    Parameters
    ----------
    uri : str or Path
        ``v.tif``, ``f.h5:/raw`` (the HDF5 file is returned), a store, a folder.

    Returns
    -------
    Path
        Absolute, with ``~``, symlinks and ``..`` resolved (the path need not exist).
    """
    text = os.path.expanduser(str(uri))
    if not Path(text).exists():
        match = _HDF5_URI.match(text)
        if match:
            text = match.group("file")
    return Path(os.path.abspath(text)).resolve()


def storage_root(uri: str | Path) -> Path:
    """The resolved file or folder that holds the volume named by ``uri``.

    Parameters
    ----------
    uri : str or Path
        A volume URI as :func:`skelem.io.open_volume` reads it (``v.tif``, ``f.h5:/raw``,
        ``s.ome.zarr/0``), or a folder (a model directory).

    Returns
    -------
    Path
        :func:`resolve_uri` of ``uri``, climbed to the outermost zarr store around a zarr array.
    """
    path = resolve_uri(uri)
    root = path
    for parent in path.parents:
        if _is_zarr_folder(parent):
            root = parent  # keep climbing: the outermost store is the one an output would replace
    return root


def _same_file(first: Path, second: Path) -> bool:
    """Whether two existing paths are one file (hard links included)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def check_output_apart(output: str | Path, inputs: Iterable[tuple[str, str | Path | None]]) -> None:
    """Refuse an output that is, lies inside, or contains any input of the same command.

    This holds with or without ``--overwrite``: an output may never destroy an input.

    Parameters
    ----------
    output : str or Path
        The output the command is about to write (a file, a store or a folder).
    inputs : iterable of (str, str or Path or None)
        ``(what, uri)`` of every input, e.g. ``("input volume", "v.tif")`` or
        ``("model folder", "model")``; ``None`` URIs (inputs not given) are skipped.

    Raises
    ------
    InputError
        One sentence naming the output and the input it would overwrite.
    """
    out = resolve_uri(output)
    for what, uri in inputs:
        if uri is None or str(uri) == "":
            continue
        source = storage_root(uri)
        if out == source or _same_file(out, source):
            raise InputError(
                f"The output {output} would replace the {what} {uri}; choose another output "
                "path, so that it is never overwritten."
            )
        if out.is_relative_to(source):
            raise InputError(
                f"The output {output} would be written inside the {what} {uri}; choose an "
                "output path outside it."
            )
        if source.is_relative_to(out):
            raise InputError(
                f"The output {output} holds the {what} {uri}, which writing the output could "
                "destroy; choose an output path that holds no input."
            )


def check_output_writable(output: str | Path) -> None:
    """Refuse, before any work, an output whose folder exists but cannot be written.

    The folder that would receive the output (and its temporary sibling) is the output's
    parent; a folder output that already exists (a model directory being continued) must be
    writable too. A missing folder is left to the writers, which say so.

    Parameters
    ----------
    output : str or Path
        The output (a file, a store, ``f.h5:/dataset`` or a folder).

    Raises
    ------
    InputError
        One sentence naming the folder.
    """
    out = resolve_uri(output)
    folders = [out.parent] + ([out] if out.is_dir() else [])
    for folder in folders:
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(
                f"The output folder {folder} is not writable (read-only or no permission); "
                "choose another output path."
            )
