"""The multiscale pyramid of OME-Zarr outputs: geometry, block means, resuming, finalize hook."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import zarr

from skelem.errors import InputError
from skelem.inference.store import finalize_store
from skelem.io import create_ome_zarr, open_volume, write_volume
from skelem.io.ngff import read_multiscales
from skelem.io.pyramid import PROGRESS_FILE, build_pyramid, downsample_mean, plan_levels

VOXEL = (0.01, 0.01, 0.01)


def _block_mean(volume: np.ndarray, k: int) -> np.ndarray:
    """Mean of (k, k, k) blocks of a volume whose sides are multiples of k."""
    z, y, x = (n // k for n in volume.shape)
    return volume.reshape(z, k, y, k, x, k).mean(axis=(1, 3, 5))


def test_isotropic_levels_halve_every_axis_until_a_chunk_holds_a_plane():
    levels = plan_levels((32, 48, 40), (8, 16, 16), VOXEL)
    assert [lv.shape for lv in levels] == [(16, 24, 20), (8, 12, 10)]
    assert [lv.factors for lv in levels] == [(2, 2, 2), (4, 4, 4)]
    assert [lv.path for lv in levels] == ["1", "2"]
    assert levels[1].chunks == (8, 12, 10)


def test_anisotropic_volume_halves_y_and_x_until_z_voxel_size_is_reached():
    levels = plan_levels((10, 128, 128), (4, 16, 16), (0.04, 0.01, 0.01))
    assert [lv.step for lv in levels] == [(1, 2, 2), (1, 2, 2), (2, 2, 2)]
    assert levels[-1].shape == (5, 16, 16)


def test_a_finer_z_is_halved_alone_until_it_reaches_y_and_x():
    levels = plan_levels((16, 40, 40), (8, 16, 16), (0.005, 0.02, 0.02))
    assert [lv.step for lv in levels] == [(2, 1, 1), (2, 1, 1), (2, 2, 2), (2, 2, 2)]


def test_small_volume_gets_no_level():
    assert plan_levels((64, 64, 64), (16, 256, 256), VOXEL) == []


def test_block_mean_averages_only_the_voxels_of_partial_edge_blocks():
    block = np.arange(5, dtype=float).reshape(1, 1, 5)
    np.testing.assert_allclose(downsample_mean(block, (1, 1, 2)).ravel(), [0.5, 2.5, 4.0])
    volume = np.random.default_rng(0).random((4, 6, 8))
    np.testing.assert_allclose(downsample_mean(volume, (2, 2, 2)), _block_mean(volume, 2))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_written_output_carries_levels_that_are_block_means(tmp_path, version):
    volume = np.random.default_rng(1).random((32, 48, 48)).astype(np.float32)
    path = write_volume(
        tmp_path / "out.ome.zarr", volume, VOXEL, "micrometer", version=version, chunks=(8, 16, 16)
    )
    group = zarr.open_group(path, mode="r")
    multiscale = read_multiscales(group.attrs)
    assert [d["path"] for d in multiscale["datasets"]] == ["0", "1", "2"]
    scales = [d["coordinateTransformations"][0]["scale"] for d in multiscale["datasets"]]
    assert scales[2] == pytest.approx([0.04, 0.04, 0.04])
    np.testing.assert_allclose(group["2"][...], _block_mean(volume, 4), rtol=1e-5)
    np.testing.assert_array_equal(open_volume(path).read(), volume)  # level 0 as before
    level1 = open_volume(path, level=1)
    assert level1.shape == (16, 24, 24) and level1.voxel_size == pytest.approx((0.02,) * 3)
    assert not (tmp_path / "out.ome.zarr" / PROGRESS_FILE).exists()


def test_integer_levels_are_rounded_means(tmp_path):
    volume = np.zeros((2, 32, 32), dtype=np.uint8)
    volume[0, 0, 0] = 3  # block (0, 0, 0) of level 1 averages 3 over 8 voxels -> 0.375 -> 0
    volume[:, 2:4, 2:4] = 201  # a full block: 201
    path = write_volume(tmp_path / "u8.zarr", volume, VOXEL, chunks=(2, 8, 8))
    level1 = zarr.open_group(path, mode="r")["1"]
    assert level1.dtype == np.uint8
    assert level1[0, 0, 0] == 0 and level1[0, 1, 1] == 201


class Interrupt(Exception):
    pass


def _stop_after(n: int):
    def progress(event):
        if event.step >= n:
            raise Interrupt

    return progress


def _filled_store(path, volume, version="0.5"):
    array = create_ome_zarr(path, volume.shape, volume.dtype, (4, 8, 8), VOXEL, version=version)
    array[...] = volume
    return path


def test_killed_build_resumes_where_it_stopped_and_matches_an_uninterrupted_one(tmp_path):
    volume = np.random.default_rng(2).random((16, 32, 32)).astype(np.float32)
    store = _filled_store(tmp_path / "a.ome.zarr", volume)
    reference = _filled_store(tmp_path / "b.ome.zarr", volume)
    total = sum(lv.n_chunks for lv in build_pyramid(reference))

    with pytest.raises(Interrupt):
        build_pyramid(store, progress=_stop_after(5))
    assert (store / PROGRESS_FILE).exists()
    # the metadata does not name unfinished levels: level 0 reads as before, level 1 is not there
    np.testing.assert_array_equal(open_volume(store).read(), volume)
    with pytest.raises(InputError, match="level 1 does not exist"):
        open_volume(store, level=1)

    steps: list[int] = []
    build_pyramid(store, progress=lambda e: steps.append(e.step))
    assert steps[0] == 6 and steps[-1] == total  # continued, did not start again
    assert not (store / PROGRESS_FILE).exists()
    for name in ("1", "2"):
        np.testing.assert_array_equal(
            zarr.open_group(store)[name][...], zarr.open_group(reference)[name][...]
        )
    assert dict(zarr.open_group(store).attrs) == dict(zarr.open_group(reference).attrs) | {
        "ome": {
            **zarr.open_group(reference).attrs["ome"],
            "multiscales": [
                {**zarr.open_group(reference).attrs["ome"]["multiscales"][0], "name": "a"}
            ],
        }
    }


def test_a_second_call_changes_nothing(tmp_path):
    volume = np.random.default_rng(3).random((8, 32, 32)).astype(np.float32)
    store = _filled_store(tmp_path / "c.ome.zarr", volume, version="0.4")
    first = build_pyramid(store)
    before = zarr.open_group(store)["1"][...]
    steps: list[int] = []
    again = build_pyramid(store, progress=lambda e: steps.append(e.step))
    assert again == first and steps == []
    np.testing.assert_array_equal(zarr.open_group(store)["1"][...], before)


def test_finalize_store_builds_the_pyramid_of_a_streamed_output(tmp_path):
    volume = np.random.default_rng(4).random((8, 32, 32)).astype(np.float32)
    partial = _filled_store(tmp_path / ".out.ome.zarr.partial", volume)
    final = finalize_store(partial, tmp_path / "out.ome.zarr")
    assert open_volume(final, level=2).shape == (2, 8, 8)


def test_a_store_that_is_not_an_image_is_refused_or_skipped(tmp_path):
    plain = tmp_path / "plain.zarr"
    zarr.create_array(str(plain), shape=(4, 4, 4), dtype="f4")
    with pytest.raises(InputError, match="not an OME-Zarr image"):
        build_pyramid(plain)
    assert build_pyramid(plain, if_image=True) == []
    shutil.rmtree(plain)
