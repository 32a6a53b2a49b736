"""What every ``skelem`` command shares: error handling, exit codes, argument parsing, progress."""

from __future__ import annotations

import errno
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

import click

from skelem.errors import SkelEMError

EXIT_INPUT_ERROR = 2  # a SkelEMError: the user can fix the input


def command_line() -> list[str]:
    """The command line of this ``skelem`` run (``sys.argv``), as recorded in the outputs' metadata.

    Returns
    -------
    list of str
    """
    return list(sys.argv)


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
            # a network call still running in a thread (an in-process Dask worker) can be neither
            # stopped nor waited for: leave now; every output is resumable or atomic
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        except MemoryError:
            click.echo("Error: out of memory; use a smaller --block or --batch-size.", err=True)
            sys.exit(1)
        except OSError as err:  # a full disk, a read-only folder...: outputs are left unfinished
            click.echo(f"Error: {os_error_sentence(err)}", err=True)
            sys.exit(EXIT_INPUT_ERROR)

    return wrapper


_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")  # numpy/tifffile's full-disk error


def os_error_sentence(err: OSError) -> str:
    """An operating-system error (full disk, read-only or missing folder...) in one sentence.

    Parameters
    ----------
    err : OSError
        E.g. ``[Errno 28] No space left on device``, numpy's ``266240 requested and 63744
        written`` (a short write: the disk is full), or h5py's multi-line message.

    Returns
    -------
    str
        E.g. ``Could not write in /data/out: no space left on device (the unfinished output was
        removed or kept only under a temporary name); free some space or choose another output
        folder.``
    """
    where = f" in {os.path.dirname(err.filename) or '.'}" if err.filename else ""
    if err.errno == errno.ENOSPC or _SHORT_WRITE.search(str(err)) or "errno = 28" in str(err):
        return (
            f"Could not write{where}: no space left on device (the unfinished output was removed "
            "or kept only under a temporary name); free some space or choose another output "
            "folder."
        )
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (
            f"Could not write{where}: {os.strerror(err.errno).lower()}; choose another output "
            "folder."
        )
    reason = os.strerror(err.errno) if err.errno else " ".join(str(err).split())
    target = f" ({err.filename})" if err.filename else ""
    return f"Operating-system error{target}: {reason.rstrip('.')}."


class OneLineUsageError(click.ClickException):
    """A click usage error shown as SkelEM shows every user error: one ``Error:`` line, exit 2.

    Parameters
    ----------
    message : str
        One sentence (see :func:`usage_sentence`).
    """

    exit_code = EXIT_INPUT_ERROR


def usage_sentence(err: click.UsageError) -> str:
    """click's usage error as one sentence that points to the command's ``--help``.

    Parameters
    ----------
    err : click.UsageError
        E.g. ``Invalid value for '--factor': 'abc' is not a valid float.``, or
        ``No such option '--fo'. (Did you mean one of: '--factor', '--fuse'?)``.

    Returns
    -------
    str
        E.g. ``Invalid value for '--factor': 'abc' is not a valid float; see 'skelem restore
        --help'.`` (one line, ending with a full stop).
    """
    text = " ".join(err.format_message().split())
    # "X. (Did you mean Y?)" -> "X (did you mean Y?)": one sentence
    text = re.sub(r"\. \((\w)", lambda m: f" ({m.group(1).lower()}", text)
    # "X. Did you mean Y?" -> "X (did you mean Y?)"
    text = re.sub(r"\. (Did you mean [^?]*\?)$", lambda m: f" (d{m.group(1)[1:]})", text)
    text = text.rstrip(".")
    if err.ctx is not None:
        text += f"; see '{err.ctx.command_path} --help'"
    return text + "."


def as_one_line(err: click.UsageError) -> click.ClickException:
    """The :class:`OneLineUsageError` to raise instead of ``err`` (``err`` itself for the
    no-argument help screen, which click reports as a usage error too).

    Parameters
    ----------
    err : click.UsageError

    Returns
    -------
    click.ClickException
    """
    if type(err).__name__ == "NoArgsIsHelpError":  # `skelem` alone prints the help
        return err
    return OneLineUsageError(usage_sentence(err))


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


def check_outputs_apart(
    outputs: Iterable[str | None], inputs: Iterable[tuple[str, str | None]]
) -> None:
    """Refuse any output that is, lies inside or contains an input of the command, or whose
    folder is not writable.

    The rule lives in :func:`skelem.io.paths.check_output_apart`; every command that writes calls
    this before it reads or writes anything, with or without ``--overwrite``.

    Parameters
    ----------
    outputs : iterable of str or None
        The paths the command writes (``None``: not given).
    inputs : iterable of (str, str or None)
        ``(what, path)`` of every input, e.g. ``("input volume", "v.tif")``.

    Raises
    ------
    SkelEMError
        One sentence naming the output and the input.
    """
    from skelem.io.paths import check_output_apart, check_output_writable

    inputs = list(inputs)
    for output in outputs:
        if output:
            check_output_apart(output, inputs)
            check_output_writable(output)


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
    """Progress bars on stderr (none with ``quiet``); a context manager that closes them.

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
