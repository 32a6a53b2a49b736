"""The ``export`` command: a trained model in another ecosystem's format (bioimage.io)."""

from __future__ import annotations

import click

from skelem.cli.common import check_outputs_apart, handle_errors


@click.command()
@click.argument("model_dir")
@click.option("-o", "--output", required=True, help="The package to write (model.zip).")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["bioimageio"]),
    default="bioimageio",
    show_default=True,
    help="bioimageio: a bioimage.io model (spec 0.5) of the skeleton.",
)
@click.option(
    "--test-input",
    default=None,
    help="Volume the test tensors are cropped from (default: the model's training volume).",
)
@click.option("--name", default=None, help="The model's name in the zoo.")
@click.option("--author", "authors", multiple=True, help="An author (repeat for several).")
@click.option("--license", "license_id", default="BSD-3-Clause", show_default=True, help="SPDX.")
@click.option(
    "--planes",
    type=click.Choice(["both", "xz", "yz"]),
    default="both",
    show_default=True,
    help="Cross-sections the exported model restores (both: their mean).",
)
@click.option(
    "--method",
    type=click.Choice(["skeleton", "skelem-detail0"]),
    default="skeleton",
    show_default=True,
    help="skeleton: restore --method skeleton; skelem-detail0: restore --method skelem --detail 0.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing package.")
@handle_errors
def export(
    model_dir: str,
    output: str,
    export_format: str,
    test_input: str | None,
    name: str | None,
    authors: tuple[str, ...],
    license_id: str,
    planes: str,
    method: str,
    overwrite: bool,
) -> None:
    """Export MODEL_DIR's skeleton as a bioimage.io model package (check: ``bioimageio test``)."""
    from skelem.errors import ConfigError

    check_outputs_apart([output], [("model", model_dir), ("test input", test_input)])
    try:
        import bioimageio.spec  # noqa: F401
    except ImportError:
        raise ConfigError(
            "Exporting to bioimage.io needs the bioimageio.spec package: "
            "pip install 'skelem[bioimageio]'."
        ) from None
    from skelem.export.bioimageio import export_bioimageio

    assert export_format == "bioimageio"
    path = export_bioimageio(
        model_dir,
        output,
        test_input,
        name=name,
        authors=authors or ("SkelEM user",),
        license_id=license_id,
        planes=planes,
        method=method,
        overwrite=overwrite,
    )
    click.echo(f"wrote {path}; check it with `bioimageio test {path}`")
