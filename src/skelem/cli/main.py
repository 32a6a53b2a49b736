"""The ``skelem`` command group.

Torch and heavy modules are imported inside commands, so ``--help`` is instant.

The group is defined here and every command is registered on it explicitly (:data:`COMMANDS`); the
helpers the commands share live in :mod:`skelem.cli.common`.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from skelem import __version__
from skelem.cli.commands import benchmark, demo, evaluate, train
from skelem.cli.common import as_one_line
from skelem.cli.export import export
from skelem.cli.restore import restore
from skelem.cli.volumes import info, phantom, simulate
from skelem.memory import set_malloc_reuse

COMMANDS = (info, phantom, simulate, train, restore, evaluate, benchmark, demo, export)


class SkelEMGroup(click.Group):
    """The command group; click's usage errors (an unknown option or choice, a non-numeric value,
    a missing argument) become one ``Error:`` sentence with exit code 2, without the usage block.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra
    ) -> click.Context:
        """Parse the group's own options (``skelem --bogus`` is reported in one line).

        Parameters
        ----------
        info_name : str or None
            The program name.
        args : list of str
            The command line.
        parent : click.Context, optional
        **extra
            Context settings.

        Returns
        -------
        click.Context
        """
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as err:
            raise as_one_line(err) from None

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand (its argument errors are reported in one line).

        Parameters
        ----------
        ctx : click.Context

        Returns
        -------
        Any
            The subcommand's return value.
        """
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            raise as_one_line(err) from None


@click.group(cls=SkelEMGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skelem")
@click.option("-v", "--verbose", is_flag=True, help="Show log messages.")
def cli(verbose: bool) -> None:
    """SkelEM: isotropic volumes from anisotropic microscopy, trained on your own data."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # training steps and network calls reuse their buffers instead of faulting them in again
    # (benchmarks/RESULTS.md, issue 13: 1.2x a restore's wall time, a fifth of it in the kernel)
    set_malloc_reuse()


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``skelem`` console script (and of ``python -m skelem.cli.main``)."""
    cli(prog_name="skelem")


if __name__ == "__main__":
    main()
