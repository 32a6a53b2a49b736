"""OME-NGFF metadata through ome-zarr-models: what SkelEM writes validates as NGFF 0.4 and 0.5,
and what the library refuses is still read leniently."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from ome_zarr_models import open_ome_zarr
from pydantic import ValidationError

from skelem.io import open_volume, write_volume
from skelem.io.ngff import image_attrs, read_multiscales, validate_image


@pytest.mark.parametrize(("version", "zarr_format"), [("0.4", 2), ("0.5", 3)])
def test_outputs_validate_as_ngff_images_of_their_version(tmp_path, rng, version, zarr_format):
    volume = rng.random((16, 40, 40)).astype(np.float32)
    path = write_volume(
        tmp_path / "out.ome.zarr",
        volume,
        (0.02, 0.02, 0.02),
        "micrometer",
        metadata={"method": "skelem", "seed": 3},
        version=version,
        chunks=(8, 16, 16),
    )
    image = validate_image(path)  # metadata and arrays (shapes, dimensions) checked
    assert image.ome_zarr_version == version
    assert type(open_ome_zarr(path)) is type(image)
    assert zarr.open_group(path, mode="r").metadata.zarr_format == zarr_format
    attributes = image.attributes if version == "0.4" else image.attributes.ome
    (multiscale,) = attributes.multiscales
    assert [d.path for d in multiscale.datasets] == ["0", "1", "2"]
    assert multiscale.datasets[1].coordinateTransformations[0].scale == pytest.approx(
        [0.04, 0.04, 0.04]
    )
    assert [a.unit for a in multiscale.axes] == ["micrometer"] * 3
    volume_back = open_volume(path)
    assert volume_back.voxel_size == pytest.approx((0.02, 0.02, 0.02))
    assert volume_back.metadata == {"method": "skelem", "seed": 3}


def test_the_library_refuses_metadata_that_breaks_the_spec():
    for version in ("0.4", "0.5"):
        with pytest.raises(ValidationError):  # an image needs at least one dataset
            image_attrs((1.0, 1.0, 1.0), "micrometer", version, "bad", level_factors=[])


def test_a_store_with_a_mismatched_array_does_not_validate(tmp_path, rng):
    path = write_volume(tmp_path / "x.ome.zarr", rng.random((4, 8, 8)), None, version="0.5")
    group = zarr.open_group(path, mode="r+")
    group.create_array("0", shape=(4, 8), dtype="f4", overwrite=True)  # 2-D under 3 axes
    with pytest.raises((ValidationError, ValueError)):
        validate_image(path)


def test_metadata_the_library_refuses_is_read_leniently(tmp_path, rng):
    # NGFF 0.4 requires coordinateTransformations on every dataset; other tools open such stores
    volume = rng.random((4, 8, 8)).astype(np.float32)
    group = zarr.open_group(str(tmp_path / "loose.zarr"), mode="w", zarr_format=2)
    group.create_array("0", data=volume)
    entry = {"version": "0.4", "axes": ["z", "y", "x"], "datasets": [{"path": "0"}]}
    group.attrs["multiscales"] = [entry]
    assert read_multiscales(group.attrs) == entry
    np.testing.assert_array_equal(open_volume(tmp_path / "loose.zarr").read(), volume)


def test_written_attributes_are_plain_json(tmp_path, rng):
    path = write_volume(tmp_path / "j.ome.zarr", rng.random((4, 8, 8)), (1, 1, 1), version="0.4")
    text = (tmp_path / "j.ome.zarr" / ".zattrs").read_text()
    assert json.loads(text)["multiscales"][0]["version"] == "0.4"
    assert path.endswith("j.ome.zarr")
