"""No output may replace, sit inside or contain an input: ``skelem.io.paths.check_output_apart``.

Paths are compared resolved (symlinks, ``..``, hard links), and an input inside a store or an HDF5
file stands for the whole store or file, which an output would replace.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from skelem.errors import InputError
from skelem.io import check_output_apart, write_volume
from skelem.io.paths import resolve_uri, storage_root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    volume = np.zeros((3, 4, 4), np.uint8)
    write_volume(tmp_path / "in.tif", volume, (4.0, 1.0, 1.0))
    write_volume(tmp_path / "in.ome.zarr", volume, (4.0, 1.0, 1.0))
    write_volume(tmp_path / "in.h5:/raw", volume, (4.0, 1.0, 1.0))
    (tmp_path / "model").mkdir()
    (tmp_path / "sub").mkdir()
    return tmp_path


def test_a_store_array_and_an_hdf5_dataset_stand_for_their_store_and_file(folder: Path) -> None:
    assert storage_root(folder / "in.ome.zarr" / "0") == (folder / "in.ome.zarr").resolve()
    assert storage_root(f"{folder}/in.h5:/raw") == (folder / "in.h5").resolve()
    assert resolve_uri(f"{folder}/new.h5:/data") == (folder / "new.h5").resolve()
    assert storage_root(folder / "in.tif") == (folder / "in.tif").resolve()


OVERLAPS = {
    # output (relative to the folder), input, words of the refusal
    "same-file": ("in.tif", "in.tif", "would replace"),
    "dot-dot": ("sub/../in.tif", "in.tif", "would replace"),
    "same-hdf5-file-other-dataset": ("in.h5:/restored", "in.h5:/raw", "would replace"),
    "store-over-its-array": ("in.ome.zarr", "in.ome.zarr/0", "would replace"),
    "inside-the-store": ("in.ome.zarr/out.tif", "in.ome.zarr", "inside"),
    "beside-the-array-in-the-store": ("in.ome.zarr/1", "in.ome.zarr/0", "inside"),
    "inside-the-model-folder": ("model/out.tif", "model", "inside"),
    "folder-holding-the-input": (".", "in.tif", "holds"),
}


@pytest.mark.parametrize(("output", "source", "words"), OVERLAPS.values(), ids=list(OVERLAPS))
def test_an_output_over_or_inside_an_input_is_refused(
    folder: Path, output: str, source: str, words: str
) -> None:
    with pytest.raises(InputError, match=words) as info:
        check_output_apart(f"{folder}/{output}", [("input volume", f"{folder}/{source}")])
    assert "input volume" in str(info.value)


def test_symlinks_and_hard_links_to_the_input_are_the_input(folder: Path) -> None:
    (folder / "link.tif").symlink_to(folder / "in.tif")
    os.link(folder / "in.tif", folder / "hard.tif")
    for name in ("link.tif", "hard.tif"):
        with pytest.raises(InputError, match="would replace"):
            check_output_apart(folder / name, [("input volume", folder / "in.tif")])
        with pytest.raises(InputError, match="would replace"):
            check_output_apart(folder / "in.tif", [("input volume", folder / name)])
    linked_dir = folder / "linked"
    linked_dir.symlink_to(folder / "model", target_is_directory=True)
    with pytest.raises(InputError, match="inside"):
        check_output_apart(linked_dir / "out.tif", [("model folder", folder / "model")])


def test_outputs_beside_the_inputs_are_fine(folder: Path) -> None:
    inputs = [
        ("input volume", f"{folder}/in.ome.zarr/0"),
        ("model folder", folder / "model"),
        ("labels", None),
        ("config file", ""),
    ]
    for output in ("out.tif", "in2.tif", "out.ome.zarr", "sub/out.tif", "in.tif.npy"):
        check_output_apart(folder / output, inputs)
    check_output_apart(f"{folder}/out.h5:/raw", [("input volume", f"{folder}/in.h5:/raw")])
