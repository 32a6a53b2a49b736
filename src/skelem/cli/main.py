"""The ``skelem`` command group.

Torch and heavy modules are imported inside commands, so ``--help`` is instant.

The group is defined here and every command is registered on it explicitly (:data:`COMMANDS`); the
helpers the commands share live in :mod:`skelem.cli.common`.
"""

from __future__ import annotations

import logging
import sys

import click

from skelem import __version__
from skelem.cli.commands import benchmark, demo, evaluate, train
from skelem.cli.restore import restore
from skelem.cli.volumes import info, phantom, simulate

COMMANDS = (info, phantom, simulate, train, restore, evaluate, benchmark, demo)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skelem")
@click.option("-v", "--verbose", is_flag=True, help="Show log messages.")
def cli(verbose: bool) -> None:
    """SkelEM: isotropic volumes from anisotropic microscopy, trained on your own data."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``skelem`` console script (and of ``python -m skelem.cli.main``)."""
    # the arguments, for commands that continue their work in fresh processes (restore in rounds)
    cli(prog_name="skelem", obj={"argv": sys.argv[1:]})


if __name__ == "__main__":
    main()
