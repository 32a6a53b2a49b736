"""What every ``skelem`` command shares: error handling, exit codes, argument parsing, progress."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from skelem.errors import SkelEMError

EXIT_INPUT_ERROR = 2  # a SkelEMError: the user can fix the input
EXIT_MORE_BLOCKS = 75  # a restore round stopped after its blocks; more remain (EX_TEMPFAIL)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print user-facing errors as one line and exit 2, never a traceback.

    Parameters
    ----------
    func : callable
        A command's body.

    Returns
    -------
    callable
        The wrapped body.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SkelEMError as err:
            click.echo(f"Error: {err}", err=True)
            sys.exit(EXIT_INPUT_ERROR)
        except KeyboardInterrupt:
            click.echo(
                "Interrupted; run the same command again to continue where it stopped.", err=True
            )
            sys.exit(130)
        except MemoryError:
            click.echo("Error: out of memory; use a smaller --block or --batch-size.", err=True)
            sys.exit(1)

    return wrapper


def parse_triple(text: str | None, name: str, kind: type = float) -> tuple | None:
    """Parse ``Z,Y,X`` (or ``ZxYxX``) into three positive numbers of ``kind``.

    Parameters
    ----------
    text : str or None
        The option's value (None: not given).
    name : str
        The option's flag, for the message.
    kind : type
        ``float`` or ``int``.

    Returns
    -------
    tuple or None

    Raises
    ------
    SkelEMError
        Not three positive numbers.
    """
    if text is None:
        return None
    parts = text.replace("x", ",").split(",")
    try:
        values = tuple(kind(p) for p in parts)
    except ValueError:
        raise SkelEMError(
            f"{name} must be three comma-separated numbers Z,Y,X, got {text!r}."
        ) from None
    if len(values) != 3 or any(v <= 0 for v in values):
        raise SkelEMError(f"{name} must be three positive numbers Z,Y,X, got {text!r}.")
    return values


def open_volume_arg(path: str, voxel_size: str | None = None):
    """Open the volume at ``path``, with ``--voxel-size`` overriding the file's.

    Parameters
    ----------
    path : str
        A volume (see :func:`skelem.io.open_volume`).
    voxel_size : str, optional
        ``Z,Y,X`` in the file's unit.

    Returns
    -------
    skelem.io.Volume
    """
    from skelem.io import open_volume

    return open_volume(path, voxel_size=parse_triple(voxel_size, "--voxel-size"))


def make_progress(quiet: bool):
    """Progress bars on stderr (none with ``quiet``); call ``.close()`` when done.

    Parameters
    ----------
    quiet : bool
        No bars.

    Returns
    -------
    skelem.cli.progress.TqdmProgress
    """
    from skelem.cli.progress import TqdmProgress

    return TqdmProgress(enabled=not quiet)
