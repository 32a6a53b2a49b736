"""Provenance sidecars of NPY outputs (``out.npy`` -> ``out.npy.json``).

NPY files hold no metadata, so an NPY output's provenance (what
:func:`skelem.inference.provenance.restore_provenance` records) is written beside it, atomically,
with the file's SHA-256 so that a sidecar left beside another file is recognised and ignored.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from skelem.atomic import file_sha256, write_text_atomic

log = logging.getLogger(__name__)

__all__ = ["npy_sidecar_path", "read_npy_provenance", "write_npy_sidecar"]


def npy_sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar that holds an NPY output's provenance: ``out.npy`` -> ``out.npy.json``.

    Parameters
    ----------
    path : str or Path
        The NPY output.

    Returns
    -------
    Path
    """
    path = Path(path)
    return path.with_name(path.name + ".json")




def write_npy_sidecar(output: str | Path, written: str | Path, metadata: dict) -> Path:
    """Write the provenance of the NPY output ``output`` to its sidecar, atomically.

    Called with the NPY file complete under its temporary name ``written``, before it is renamed
    to ``output``; the sidecar records the file's SHA-256, so that a sidecar left beside another
    file (a run killed between the two renames, a file replaced by hand) is recognised.

    Parameters
    ----------
    output : str or Path
        The final NPY output.
    written : str or Path
        The complete NPY file (its temporary name).
    metadata : dict
        JSON-friendly, e.g. :func:`restore_provenance`.

    Returns
    -------
    Path
        The sidecar.
    """
    record = {"npy_sha256": file_sha256(Path(written)), "skelem": metadata}
    return write_text_atomic(npy_sidecar_path(output), json.dumps(record, indent=1, default=str))


def read_npy_provenance(path: str | Path) -> dict | None:
    """The provenance of an NPY output from its sidecar.

    Parameters
    ----------
    path : str or Path
        The NPY file.

    Returns
    -------
    dict or None
        The record :func:`write_npy_sidecar` wrote; ``None`` when there is no sidecar, it is not
        valid JSON, or it belongs to another file (its SHA-256 differs).
    """
    sidecar = npy_sidecar_path(path)
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("npy_sha256") != file_sha256(Path(path)):
        log.warning("%s does not describe %s (another file's record); ignored", sidecar, path)
        return None
    return record.get("skelem")
