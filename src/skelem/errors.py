"""User-facing errors.

Every problem caused by the user's input (a file, an argument, a model directory) is raised as a
:class:`SkelEMError` whose message is one readable sentence. The CLI prints it and exits with
code 2; it never shows a traceback for these.
"""

from __future__ import annotations


class SkelEMError(Exception):
    """Base class of errors caused by input the user can fix (exit code 2 in the CLI).

    Parameters
    ----------
    message : str
        One readable sentence saying what is wrong and, where possible, how to fix it.
    """


class InputError(SkelEMError):
    """A volume or an argument is unusable (missing file, wrong shape, NaN, bad dtype...)."""


class ConfigError(SkelEMError):
    """A configuration value breaks a domain rule."""


class ModelError(SkelEMError):
    """A model directory or checkpoint is missing, corrupt, or does not match the data."""


class OutputExistsError(SkelEMError):
    """The output exists and ``overwrite`` was not requested."""
