"""A ``write_volume`` killed with SIGKILL leaves only a recognisably partial file, and the next
write of the same output removes it.

A child process writes a volume (TIFF, NPY with its provenance sidecar, HDF5, OME-Zarr) and is
killed either midway through the write (as soon as its temporary ``.{name}.partial-<pid>``
appears) or with the whole file written but not yet renamed (the child blocks in
``commit_output``: the worst moment, the data complete under its temporary name). After the kill
nothing under the final name may exist, and whatever is left must be named ``.partial-<pid>`` of
the dead child. The same write is then run again (in this process, so another pid): the output
reads back equal, and no temporary file or folder is left beside it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from skelem.io import open_volume, write_volume
from skelem.io.sidecar import npy_sidecar_path, read_npy_provenance

from . import faults

VOXEL = (0.04, 0.01, 0.01)
#: 24 MB of float32: long enough to write that a kill lands midway.
SHAPE = (24, 512, 512)
OUTPUTS = ["r.tif", "r.npy", "r.h5", "r.ome.zarr"]

CHILD = """
import sys, time
import numpy as np
from skelem.io import writers

path, moment, shape = sys.argv[1], sys.argv[2], tuple(int(n) for n in sys.argv[3].split(","))
if moment == "before-rename":
    def hang(partial, final, overwrite=False):
        print("written", flush=True)
        time.sleep(600)
    writers.commit_output = hang
array = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
writers.write_volume(path, array, (0.04, 0.01, 0.01), metadata={"written_by": "test"})
print("finished", flush=True)
"""


def _volume() -> np.ndarray:
    return np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)


def _kill_while_writing(output: Path, moment: str) -> int:
    """Run the child writing ``output``, SIGKILL it at ``moment``; its pid."""
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(output), moment, ",".join(map(str, SHAPE))],
        env=faults.child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        if moment == "before-rename":
            line = process.stdout.readline() if process.stdout else ""
            assert line.strip() == "written", f"the child did not write: {process.stderr.read()}"
        else:
            started = faults.writing_partial(output.parent)
            deadline = time.monotonic() + 120
            while not started():
                assert process.poll() is None, f"the child ended first: {process.stderr.read()}"
                assert time.monotonic() < deadline, "no temporary file appeared in 120 s"
                time.sleep(0.001)
        assert process.poll() is None, "the write finished before the kill"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.pid


def _uri(path: Path) -> str:
    return f"{path}:/data" if path.suffix == ".h5" else str(path)


@pytest.mark.parametrize("moment", ["mid-write", "before-rename"])
@pytest.mark.parametrize("name", OUTPUTS)
def test_a_killed_write_leaves_only_a_partial_that_the_rerun_removes(
    tmp_path: Path, name: str, moment: str
) -> None:
    output = tmp_path / name
    pid = _kill_while_writing(output, moment)

    # nothing that looks complete: no output under its final name, only the dead child's
    # temporary sibling (and, for NPY, the provenance sidecar, which names the file it belongs to)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert name not in left, f"a killed write left {name} under its final name"
    sidecar = npy_sidecar_path(output).name
    temporary = [n for n in left if n != sidecar]
    assert temporary == [f".{name}.partial-{pid}"], left
    if moment == "before-rename" and name == "r.npy":
        assert sidecar in left  # written before the rename, so the rename makes both complete

    # the same write again, in another process: complete, and no temporary file left
    write_volume(output, _volume(), VOXEL, metadata={"written_by": "test"})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [name] + ([sidecar] if name == "r.npy" else [])
    ), "the rerun left a temporary file of the killed write"
    volume = open_volume(_uri(output))
    assert np.array_equal(volume.read(), _volume())
    if name == "r.npy":
        record = read_npy_provenance(output)
        assert record is not None and record["written_by"] == "test"
    else:
        assert volume.metadata is not None and volume.metadata["written_by"] == "test"
