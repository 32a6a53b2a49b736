"""A truncated or damaged TIFF is reported as damaged, never read as a smaller (e.g. 2-D) image.

A stack cut short still opens in tifffile: it reads the pages it reaches (often only the first,
a 64 x 64 image) and logs errors. SkelEM counts the images the file announces (ImageJ metadata,
tifffile's shape header) and checks that the pixel data and the pages fit in the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tifffile

from skelem.errors import InputError
from skelem.io import open_volume

STACK = (np.arange(17 * 64 * 64) % 251).astype(np.uint8).reshape(17, 64, 64)

WRITERS = {
    "imagej": {"imagej": True, "metadata": {"axes": "ZYX", "spacing": 0.04, "unit": "um"}},
    "shaped-header": {},
    "plain": {"metadata": None},
    "shaped-compressed": {"compression": "zlib"},
}


def _stack(folder: Path, kind: str) -> Path:
    path = folder / f"{kind}.tif"
    tifffile.imwrite(path, STACK, **WRITERS[kind])
    return path


def _cut(path: Path, size: int) -> Path:
    cut = path.with_name("cut.tif")
    cut.write_bytes(path.read_bytes()[:size])
    return cut


@pytest.mark.parametrize("kind", list(WRITERS))
def test_the_whole_stack_opens(tmp_path: Path, kind: str) -> None:
    volume = open_volume(_stack(tmp_path, kind))
    assert volume.shape == (17, 64, 64)
    np.testing.assert_array_equal(volume.read(), STACK)


def test_the_first_5_kb_of_an_imagej_stack_is_damaged_not_2d(tmp_path: Path) -> None:
    cut = _cut(_stack(tmp_path, "imagej"), 5000)
    with pytest.raises(InputError) as info:
        open_volume(cut)
    message = str(info.value)
    assert message == (
        f"{cut} is damaged or truncated: pages are missing (its ImageJ metadata announces 17 "
        "image(s), 1 found complete)."
    )


@pytest.mark.parametrize(
    ("kind", "fraction", "fragment"),
    [
        ("imagej", 0.5, "its ImageJ metadata announces 17 image(s), 8 found complete"),
        ("shaped-header", 0.07, "its header announces 17 image(s), 1 found complete"),
        ("shaped-header", 0.5, "its header announces 17 image(s), 8 found complete"),
        ("plain", 0.5, "only 1 could be read before the end of the file"),
        ("shaped-compressed", 0.5, "its header announces 17 image(s)"),
    ],
)
def test_a_cut_stack_says_how_many_pages_it_announces_and_holds(
    tmp_path: Path, kind: str, fraction: float, fragment: str
) -> None:
    path = _stack(tmp_path, kind)
    cut = _cut(path, int(path.stat().st_size * fraction))
    with pytest.raises(InputError, match="is damaged or truncated: pages are missing") as info:
        open_volume(cut)
    assert fragment in str(info.value)


def test_a_compressed_stack_missing_its_last_bytes_is_damaged(tmp_path: Path) -> None:
    """Every page is listed, but the last one's compressed data runs past the end of the file."""
    path = _stack(tmp_path, "shaped-compressed")
    with pytest.raises(InputError, match="announces 17 image.s., 16 found complete"):
        open_volume(_cut(path, path.stat().st_size - 10))


def test_tifffile_errors_do_not_reach_the_terminal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cut = _cut(_stack(tmp_path, "imagej"), 5000)
    with caplog.at_level(logging.WARNING), pytest.raises(InputError):
        open_volume(cut)
    assert not [r for r in caplog.records if r.name.startswith("tifffile")]
    assert not logging.getLogger("tifffile").filters, "the collecting filter was left behind"


@pytest.mark.parametrize(
    "content", [b"", b"II*\x00", b"not a tiff at all " * 64, b"MM\x00*" + bytes(200)]
)
def test_garbage_with_a_tif_name_is_one_sentence(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.tif"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        open_volume(path)
    message = str(info.value)
    assert message.startswith(f"{path} ") and message.endswith(".") and "\n" not in message
    assert "damaged" in message
