"""Atomic outputs: every file or folder SkelEM writes appears complete under its name, or not
at all.

One naming convention: a file or folder is written as its hidden sibling ``.{name}.partial-<pid>``,
flushed to disk, then renamed to its final name. A run killed midway leaves only a hidden
``.partial`` sibling, never something that looks complete. (Resumable OME-Zarr stores are the one
exception by design: they grow under ``{name}.partial`` so a rerun finds them; see
:mod:`skelem.inference.store`.)

:func:`file_sha256` is here too, the one content hash of written files (model weights in their
manifest, NPY outputs in their provenance sidecar), so every layer can check what was written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from skelem.errors import OutputExistsError


def partial_path(path: str | Path) -> Path:
    """The temporary sibling ``.{name}.partial-<pid>`` under which ``path`` is written.

    Parameters
    ----------
    path : str or Path
        The final output path.

    Returns
    -------
    Path
        The hidden sibling in the same folder, named after this process.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def _running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (a process of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(path: str | Path) -> list[Path]:
    """Delete the temporary siblings of ``path`` left by processes that no longer run.

    A run killed while writing leaves ``.{name}.partial-<pid>`` behind (as large as the file it
    was writing: a checkpoint, a restored volume); the next write of the same ``path`` removes
    those whose process is gone, so repeated kills and resumes do not fill the disk. A sibling
    of a running process (this one, or another one writing the same output) is kept.

    Parameters
    ----------
    path : str or Path
        The final output path.

    Returns
    -------
    list of Path
        The siblings removed.
    """
    path = Path(path)
    prefix = f".{path.name}.partial-"
    removed = []
    try:
        siblings = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for sibling in siblings:
        pid = sibling.name[len(prefix) :]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            remove_path(sibling)
            removed.append(sibling)
    return removed


def remove_path(path: Path) -> None:
    """Delete a file, symlink or folder if it exists (no error when it does not).

    Parameters
    ----------
    path : Path
        The file, symlink or folder to delete (a symlink is removed, not followed).
    """
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def commit_output(partial: str | Path, path: str | Path, overwrite: bool = False) -> Path:
    """Rename a complete ``partial`` output (file or folder) to its final ``path``.

    An existing output is replaced only when ``overwrite`` is true; for folders the old one is
    moved aside, the new one renamed in, and the old one deleted last.

    Parameters
    ----------
    partial : str or Path
        The complete temporary output.
    path : str or Path
        Its final name.
    overwrite : bool
        Replace an existing ``path``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is false (``partial`` is removed).
    """
    partial, path = Path(partial), Path(path)
    exists = path.exists() or path.is_symlink()
    if exists and not overwrite:
        remove_path(partial)
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it.")
    if not exists:
        os.rename(partial, path)
    elif path.is_file() and partial.is_file():
        os.replace(partial, path)
    else:
        aside = path.with_name(f".{path.name}.old-{os.getpid()}")
        remove_path(aside)
        os.rename(path, aside)
        try:
            os.rename(partial, path)
        except BaseException:
            os.rename(aside, path)
            raise
        remove_path(aside)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield the temporary sibling of ``path`` to write; rename it to ``path`` on success.

    On any exception the temporary file or folder is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or Path
        The final output path.
    overwrite : bool
        Replace an existing ``path`` on success (otherwise :class:`OutputExistsError`).

    Yields
    ------
    Path
        The temporary sibling (see :func:`partial_path`) to write.

    Examples
    --------
    >>> with atomic_path(folder / "weights.safetensors") as tmp:  # doctest: +SKIP
    ...     save_file(tensors, tmp)
    """
    path = Path(path)
    tmp = partial_path(path)
    remove_path(tmp)
    remove_stale_partials(path)
    try:
        yield tmp
        _fsync(tmp)
        commit_output(tmp, path, overwrite=overwrite)
    except BaseException:
        remove_path(tmp)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, replacing an existing file.

    Parameters
    ----------
    path : str or Path
        Destination file.
    text : str
        The content.

    Returns
    -------
    Path
        ``path``.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, replacing an existing file.

    Parameters
    ----------
    path : str or Path
        Destination file.
    data : bytes
        The content.

    Returns
    -------
    Path
        ``path``.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def file_sha256(path: str | Path, chunk_bytes: int = 2**20) -> str:
    """The SHA-256 of a file's content, read in chunks.

    Parameters
    ----------
    path : str or Path
        The file.
    chunk_bytes : int
        Bytes read at a time.

    Returns
    -------
    str
        64 hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
