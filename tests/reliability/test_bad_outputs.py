"""Outputs that cannot be written: a read-only output folder, a disk that fills up mid-write.

Each case runs ``skelem`` (in this process) and checks what ``test_bad_inputs.py`` checks (exit
2, one ``Error:`` sentence, no traceback, the inputs unchanged) and that nothing under a final
name is left incomplete: a TIFF, NPY, HDF5 or OME-Zarr output that did not fit is absent (an
OME-Zarr store may stay under its temporary name, to be resumed), and a model folder whose
training ran out of space holds only files that load whole (:func:`faults.check_no_false_complete`).

The folders are real small file systems: a tmpfs of a few kilobytes (``full``) and a read-only
tmpfs (``readonly``), mounted for the test when it runs as root with ``mount`` available. Elsewhere
the same cases run against simulated ones: a folder without write permission (not root), and
writers that write half their file then raise ``ENOSPC`` (:func:`simulated_full_disk`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from skelem.cli.main import cli

from . import faults
from .test_bad_inputs import _snapshot, assert_refused

CUBIC = ("restore", "-q", "--method", "cubic", "{in}/v.tif")
TRAIN = ("train", "-q", "{in}/v.tif", "--iterations", "4", "--patch-size", "16", "--stages")
TRAIN_ALL = (*TRAIN, "skeleton,refiner", "--config", "{in}/tiny_model.json")

#: name -> (arguments, words of the refusal, file system): ``{in}`` the inputs, ``{readonly}``
#: a read-only folder, ``{full}`` a folder on a file system of ``size`` kilobytes.
DISK_CASES: dict[str, tuple[tuple[str, ...], list[str], dict]] = {
    "output-folder-read-only": (
        (*CUBIC, "-o", "{readonly}/r.tif"), ["output folder", "not writable"], {"read_only": True}
    ),
    "model-folder-read-only": (
        (*TRAIN_ALL, "-o", "{readonly}/model"), ["output folder", "not writable"],
        {"read_only": True},
    ),
    "disk-full-tif": ((*CUBIC, "-o", "{full}/r.tif"), ["no space left on device"], {"size": 16}),
    "disk-full-npy": ((*CUBIC, "-o", "{full}/r.npy"), ["no space left on device"], {"size": 16}),
    "disk-full-hdf5": ((*CUBIC, "-o", "{full}/r.h5"), ["no space left on device"], {"size": 16}),
    "disk-full-ome-zarr": (
        (*CUBIC, "-o", "{full}/r.ome.zarr", "--block", "8,32,32"), ["no space left on device"],
        {"size": 16},
    ),
    # a tiny model's files: manifest 2 kB, config.json 1.4 kB, skeleton checkpoint 152 kB,
    # skeleton weights 32 kB; each size fills the disk at another of them
    "disk-full-model-config": (
        (*TRAIN_ALL, "-o", "{full}/model"), ["no space left on device"], {"size": 4}
    ),
    "disk-full-model-checkpoint": (
        (*TRAIN_ALL, "-o", "{full}/model"), ["no space left on device"], {"size": 40}
    ),
    "disk-full-model-weights": (
        (*TRAIN_ALL, "-o", "{full}/model"), ["no space left on device"], {"size": 176}
    ),
    "disk-full-model-second-stage": (
        (*TRAIN_ALL, "-o", "{full}/model"), ["no space left on device"], {"size": 240}
    ),
}  # fmt: skip


def _can_mount() -> bool:
    if os.geteuid() != 0:
        return False
    probe = Path(f"/tmp/.skelem-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(probe)], capture_output=True
        )
        if done.returncode != 0:
            return False
        subprocess.run(["umount", str(probe)], check=True)
        return True
    except (OSError, subprocess.CalledProcessError):
        return False
    finally:
        probe.rmdir()


#: Real small file systems (root with ``mount``); ``SKELEM_TEST_SIMULATED_DISKS=1`` forces the
#: simulated ones.
MOUNT = not os.environ.get("SKELEM_TEST_SIMULATED_DISKS") and _can_mount()


@contextlib.contextmanager
def small_file_system(folder: Path, size_kb: int = 16, read_only: bool = False) -> Iterator[Path]:
    """``folder`` as a tmpfs of ``size_kb`` kilobytes (read-only if asked), unmounted after; a
    plain folder when mounting is not possible (see :func:`simulated_full_disk`)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not MOUNT:
        if read_only:
            folder.chmod(0o555)  # root may still write: see the test's os.access stand-in
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    options = f"size={size_kb}k" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@contextlib.contextmanager
def simulated_full_disk(monkeypatch: pytest.MonkeyPatch, size_kb: int) -> Iterator[None]:
    """Without a small file system to fill: every atomic write (TIFF, HDF5 and OME-Zarr written
    whole, checkpoints, weights, manifests) past ``size_kb`` kilobytes in all writes half its
    file and raises ENOSPC."""
    from skelem import atomic
    from skelem.io import writers

    budget = {"left": size_kb * 1024}

    def spend(path: Path) -> None:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            size = file.stat().st_size
            if size > budget["left"]:
                with open(file, "r+b") as handle:
                    handle.truncate(size // 2)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
            budget["left"] -= size

    def wrap(write):
        def written(path: Path, *args, **kwargs):
            write(path, *args, **kwargs)
            spend(Path(path))

        return written

    for name in ("_write_tiff", "_write_hdf5", "_write_zarr"):
        monkeypatch.setattr(writers, name, wrap(getattr(writers, name)))
    monkeypatch.setattr(atomic, "_fsync", wrap(atomic._fsync))
    yield


def write_tiny_config(inputs: Path) -> Path:
    """``tiny_model.json`` in the inputs: tiny networks and budgets (the factor from the volume)."""
    import json

    path = inputs / "tiny_model.json"
    if not path.exists():
        sections = {k: v for k, v in faults.TINY_TRAINING.items() if k != "degradation"}
        path.write_text(json.dumps(sections))
    return path


@pytest.fixture(scope="module")
def tiny_config(inputs: Path) -> Path:
    return write_tiny_config(inputs)


@pytest.mark.parametrize("case", list(DISK_CASES))
def test_unwritable_outputs_refused_in_one_sentence_nothing_left_looking_complete(
    inputs: Path, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    args, fragments, disk = DISK_CASES[case]
    if not MOUNT and case in ("disk-full-npy", "disk-full-ome-zarr"):
        pytest.skip("the NPY sidecar and the streamed store's chunks fill up only a real small "
                    "file system (needs root and mount)")  # fmt: skip
    before = _snapshot(inputs)
    folder = tmp_path / ("readonly" if disk.get("read_only") else "full")
    simulate = not MOUNT and not disk.get("read_only")
    with contextlib.ExitStack() as stack:
        size, read_only = disk.get("size", 16), disk.get("read_only", False)
        stack.enter_context(small_file_system(folder, size, read_only))
        if simulate:
            stack.enter_context(simulated_full_disk(monkeypatch, disk["size"]))
        if not MOUNT and disk.get("read_only") and os.geteuid() == 0:
            import skelem.io.paths

            def access(path: os.PathLike, mode: int) -> bool:
                return Path(path) != folder and os.access(path, mode)

            monkeypatch.setattr(skelem.io.paths.os, "access", access)
        places = {"in": inputs, "readonly": folder, "full": folder}
        result = CliRunner().invoke(cli, [a.format(**places) for a in args])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"uncaught {result.exception!r}; stderr: {result.stderr}"
        )
        assert_refused(result.exit_code, result.stdout, result.stderr, fragments)
        assert faults.check_no_false_complete(folder) == []
        finals = [p.name for p in folder.iterdir() if ".partial" not in p.name]
        if case.startswith("disk-full-model"):
            assert finals in ([], ["model"])
        else:
            assert finals == [], f"an output that did not fit is left as {finals}"
    assert _snapshot(inputs) == before


@pytest.mark.parametrize("size_kb", [4, 40, 176])
def test_training_stopped_by_a_full_disk_resumes_bit_identical_once_space_is_freed(
    inputs: Path, tiny_config: Path, tmp_path: Path, size_kb: int
) -> None:
    """The disk fills at the config, a checkpoint or the weights; the same command, run again
    once the disk has room, finishes the model exactly as an uninterrupted run does."""
    if not MOUNT:
        pytest.skip("growing a full file system needs a real tmpfs (root and mount)")
    places = {"in": inputs, "full": tmp_path / "full"}
    args = [a.format(**places) for a in (*TRAIN_ALL, "-o", "{full}/model")]
    reference = [*args[:-1], str(tmp_path / "reference")]
    assert CliRunner().invoke(cli, reference).exit_code == 0
    with small_file_system(places["full"], size_kb):
        first = CliRunner().invoke(cli, args)
        assert first.exit_code == 2 and "no space left" in first.stderr
        subprocess.run(
            ["mount", "-o", "remount,size=4m", str(places["full"])], check=True, capture_output=True
        )
        again = CliRunner().invoke(cli, args)
        assert again.exit_code == 0, again.stderr
        assert faults.compare_models(tmp_path / "reference", places["full"] / "model") == []
