"""How much the napari test dependencies add to CI's install: two fresh venvs, side by side.

``before``: ``pip install torch==2.13.0 -e . <the test extra less napari>``; ``after``:
``pip install torch==2.13.0 -e '.[test]'`` (with ``napari[pyqt6]``). Both install from the same
package index and pip cache as CI does; the order alternates per repeat.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/napari_install_time.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _test_extra() -> list[str]:
    with open(REPO / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["optional-dependencies"]["test"]


KINDS = {
    "before": [
        "torch==2.13.0",
        "-e",
        str(REPO),
        *(d for d in _test_extra() if not d.startswith("napari")),
    ],
    "after": ["torch==2.13.0", "-e", f"{REPO}[test]"],
}


def install_seconds(kind: str, root: Path) -> tuple[float, int]:
    """Seconds to create a venv and install ``kind`` into it, and the venv's size in MiB."""
    venv = root / kind
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", *KINDS[kind]],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
    return seconds, size // 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    rows: dict[str, list] = {kind: [] for kind in KINDS}
    for repeat in range(args.repeats):
        order = list(KINDS) if repeat % 2 == 0 else list(reversed(KINDS))
        with tempfile.TemporaryDirectory(prefix="skelem-install-") as tmp:
            for kind in order:
                seconds, mib = install_seconds(kind, Path(tmp))
                rows[kind].append({"seconds": round(seconds, 1), "venv_mib": mib})
                print(f"{kind}: {seconds:.1f} s, venv {mib} MiB", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
