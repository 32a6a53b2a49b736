"""Training with an isotropic reference volume: true Z pairs (``train_model(references=...)``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from safetensors.torch import load_file

from skelem.errors import InputError, SkelEMError
from skelem.io import Volume
from skelem.training.pipeline import train_model

from .helpers import Phantom, assert_one_sentence, tiny_config


def _skeleton_only(iterations: int = 6):
    return tiny_config(skeleton_training={"iterations": iterations})


def test_reference_pairs_train_the_skeleton_and_are_recorded(tmp_path, phantom: Phantom) -> None:
    reference = Volume(phantom.truth, (4.0, 4.0, 4.0), "nanometer", "iso-reference")
    config = _skeleton_only()
    with_ref = train_model(
        phantom.volume, tmp_path / "ref", config, ["skeleton"], references=[reference]
    )
    own = train_model(phantom.volume, tmp_path / "own", config, ["skeleton"])
    recorded = with_ref.provenance["references"]
    assert recorded["share"] == 1.0
    assert recorded["volumes"] == ["iso-reference (48x64x64)"]
    assert "references" not in own.provenance
    a = load_file(str(with_ref.weights_path("skeleton")))
    b = load_file(str(own.weights_path("skeleton")))
    # same seed, same networks: only the pairs differ, so the weights must
    assert any(not np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    # and the same reference gives the same weights again
    again = train_model(
        phantom.volume, tmp_path / "again", config, ["skeleton"], references=[reference]
    )
    c = load_file(str(again.weights_path("skeleton")))
    assert all(np.array_equal(a[k].numpy(), c[k].numpy()) for k in a)


def _refused(call) -> SkelEMError:
    with pytest.raises(SkelEMError) as info:
        call()
    assert_one_sentence(str(info.value))
    return info.value


def test_an_anisotropic_or_small_reference_is_refused(tmp_path, phantom: Phantom) -> None:
    config = _skeleton_only()
    anisotropic = Volume(phantom.truth, (16.0, 4.0, 4.0), "nanometer", "aniso")
    err = _refused(
        lambda: train_model(
            phantom.volume, tmp_path / "m", config, ["skeleton"], references=[anisotropic]
        )
    )
    assert isinstance(err, InputError) and "isotropic" in str(err)
    small = Volume(phantom.truth[:30], (4.0, 4.0, 4.0), "nanometer", "small")
    err = _refused(
        lambda: train_model(
            phantom.volume, tmp_path / "m", config, ["skeleton"], references=[small]
        )
    )
    assert "too small for true Z pairs" in str(err) and "30x64x64" in str(err)
    assert not (tmp_path / "m").exists()  # refused before anything is written


def test_a_model_inside_the_reference_store_is_refused(tmp_path, phantom: Phantom) -> None:
    store = tmp_path / "reference.ome.zarr"
    store.mkdir()
    reference = Volume(phantom.truth, (4.0, 4.0, 4.0), "nanometer", str(store))
    err = _refused(
        lambda: train_model(
            phantom.volume, store / "model", _skeleton_only(), ["skeleton"], references=[reference]
        )
    )
    assert isinstance(err, InputError) and "reference volume" in str(err)
    assert list(store.iterdir()) == []


def test_cli_train_with_a_reference(tmp_path, phantom: Phantom) -> None:
    from click.testing import CliRunner

    from skelem.cli.main import cli

    acquired, reference = tmp_path / "acq.tif", tmp_path / "iso.tif"
    tifffile.imwrite(acquired, (phantom.volume.data * 255).astype(np.uint8))
    tifffile.imwrite(reference, (phantom.truth * 255).astype(np.uint8))
    config = tmp_path / "config.json"
    config.write_text(_skeleton_only().model_dump_json())
    args = [
        "train",
        str(acquired),
        "-o",
        str(tmp_path / "model"),
        "--factor",
        "4",
        "--stages",
        "skeleton",
        "--config",
        str(config),
        "--reference",
        str(reference),
        "-q",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    manifest = (tmp_path / "model" / "skelem-model.json").read_text()
    assert "iso.tif" in manifest
    inside = [
        "train",
        str(acquired),
        "-o",
        str(tmp_path / "iso.tif" / "m"),
        "--factor",
        "4",
        "--reference",
        str(reference),
        "-q",
    ]
    refused = CliRunner().invoke(cli, inside)
    assert refused.exit_code != 0 and "reference volume" in refused.output


def test_cli_gives_a_reference_trained_skeleton_neighbouring_slices(
    tmp_path, phantom: Phantom
) -> None:
    """`skelem train --reference` defaults to a 2-neighbour skeleton, `--context` overrides it,
    and without a reference a context is refused in one sentence before anything is written."""
    from click.testing import CliRunner

    from skelem.cli.commands import DEFAULT_REFERENCE_CONTEXT
    from skelem.cli.main import cli

    acquired, reference = tmp_path / "acq.tif", tmp_path / "iso.tif"
    tifffile.imwrite(acquired, (phantom.volume.data * 255).astype(np.uint8))
    tifffile.imwrite(reference, (phantom.truth * 255).astype(np.uint8))
    config = tmp_path / "config.json"  # no skeleton context in the file
    config.write_text(
        '{"skeleton": {"channels": 4, "depth": 2}, '
        '"skeleton_training": {"iterations": 2, "patch_size": 32, "batch_size": 2}}'
    )

    def train(name: str, *extra: str):
        args = ["train", str(acquired), "-o", str(tmp_path / name), "--factor", "4"]
        args += ["--stages", "skeleton", "--config", str(config), "-q", *extra]
        return CliRunner().invoke(cli, args)

    def context(name: str) -> int:
        manifest = json.loads((tmp_path / name / "skelem-model.json").read_text())
        return manifest["config"]["skeleton"]["context"]

    assert train("auto", "--reference", str(reference)).exit_code == 0
    assert context("auto") == DEFAULT_REFERENCE_CONTEXT == 2
    assert train("none", "--reference", str(reference), "--context", "0").exit_code == 0
    assert context("none") == 0
    assert train("own").exit_code == 0 and context("own") == 0
    refused = train("refused", "--context", "1")
    assert refused.exit_code != 0
    assert_one_sentence(refused.output.strip().removeprefix("Error: "))
    assert "--reference" in refused.output and not (tmp_path / "refused").exists()
