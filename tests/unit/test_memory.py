"""skelem.memory: glibc keeps freed buffers for reuse (no page-fault storm), and gives them back."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skelem.memory import _libc, release_free_memory, set_malloc_reuse

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Allocate and free a 4 MiB buffer 200 times, touching every page, under the trim threshold
# Dask's nanny gives its workers; print the minor page faults of the loop.
LOOP = """
import os, resource, sys
import numpy as np
from skelem.memory import set_malloc_reuse
if sys.argv[1] == "reuse":
    assert set_malloc_reuse()
np.ones(1 << 20, dtype=np.float32)  # warm up numpy
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    a = np.ones(1 << 20, dtype=np.float32)
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    env = {"MALLOC_TRIM_THRESHOLD_": "65536", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", LOOP, mode], capture_output=True, text=True, env=env, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(not GLIBC, reason="mallopt exists only in glibc")
def test_reuse_stops_the_page_fault_storm():
    # every free returns the 4 MiB: measured ~100,000 faults over the 200 loops, 0 with reuse
    storm, reused = _faults("default"), _faults("reuse")
    assert storm > 50_000
    assert reused < storm / 20


@pytest.mark.skipif(not GLIBC, reason="malloc_trim and mallopt exist only in glibc")
def test_glibc_is_found_and_release_runs():
    assert _libc() is not None
    assert set_malloc_reuse() is True
    release_free_memory()  # must not raise


def test_other_c_libraries_are_a_no_op(monkeypatch):
    _libc.cache_clear()
    monkeypatch.setattr(sys, "platform", "darwin")
    try:
        assert set_malloc_reuse() is False
        release_free_memory()  # nothing to do, no error
    finally:
        monkeypatch.undo()
        _libc.cache_clear()


def _rss_file_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile line")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_the_read_pages_of_a_memory_mapped_input_leave_the_resident_size(tmp_path) -> None:
    """NPY (and plain TIFF) inputs are memory-mapped: every page read stays resident until the
    pages are dropped, which is what grew a Dask worker's memory with the input it had read."""
    from skelem.io import open_volume
    from skelem.memory import drop_mapped_pages

    np.save(tmp_path / "v.npy", np.ones((64, 512, 512), dtype=np.uint8))  # 16 MiB
    volume = open_volume(tmp_path / "v.npy")
    before = _rss_file_kib()
    assert int(np.asarray(volume.data[:, :, :]).sum()) == 64 * 512 * 512
    assert _rss_file_kib() - before > 12 * 1024  # the pages read are resident
    assert drop_mapped_pages(volume.data)
    assert _rss_file_kib() - before < 2 * 1024
    assert int(np.asarray(volume.data[:1]).sum()) == 512 * 512  # still readable
    assert not drop_mapped_pages(np.ones(3))  # nothing mapped: nothing to do


def test_reuse_caps_the_arenas(monkeypatch):
    """Each allocating thread would get an arena keeping its own freed buffers: capped at two
    (one per cross-plane pass) unless asked otherwise."""
    calls: list[tuple[int, int]] = []

    class FakeLibc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    monkeypatch.setattr("skelem.memory._libc", lambda: FakeLibc())
    assert set_malloc_reuse() is True
    assert (-8, 2) in calls  # M_ARENA_MAX
    calls.clear()
    assert set_malloc_reuse(arenas=None) is True
    assert all(param != -8 for param, _ in calls) and len(calls) == 2
