"""The same ``skelem train`` and ``skelem restore`` commands, run twice as separate processes,
give byte-identical results on CPU; another ``--seed`` gives other restored pixels.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reproducibility_check.py [--work DIR]

Inputs and commands are those of ``benchmarks/fault_injection.py`` (tiny phantom, tiny networks,
every stage; restore with the sampler, seed 0, to TIFF). Prints the SHA-256 of every weights
file of each training and of each restored volume's pixels.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from reliability import faults  # noqa: E402


def _pixels_sha256(path: Path) -> str:
    from skelem.io import open_volume

    return hashlib.sha256(open_volume(path).read().tobytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/skelem-repro"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    inputs = args.work / "inputs"
    faults.make_inputs(inputs, restore_shape=(9, 48, 48))
    runs = []
    for run in ("a", "b"):
        folder = args.work / run
        faults.link_inputs(inputs, folder, ("acq.tif", "big.tif", "tiny.json"))
        faults.run_to_end(faults.TRAIN_ARGS, folder)
        runs.append(folder)
    differences = faults.compare_models(runs[0] / "model", runs[1] / "model")
    weights = sorted((runs[0] / "model").glob("*.safetensors"))
    for path in weights:
        print(f"train {path.name}: {hashlib.sha256(path.read_bytes()).hexdigest()[:16]}")
    print(f"two trainings: {'identical' if not differences else differences}")
    hashes = {}
    for run, seed in (("a", "0"), ("b", "0"), ("a", "1")):
        folder = args.work / run
        output = f"r_seed{seed}.tif"
        command = [*faults.RESTORE_ARGS, "-o", output]
        command[command.index("--seed") + 1] = seed
        faults.run_to_end(command, folder)
        hashes[(run, seed)] = _pixels_sha256(folder / output)
        print(f"restore run {run} seed {seed}: pixels sha256 {hashes[(run, seed)][:16]}")
    same = hashes[("a", "0")] == hashes[("b", "0")]
    other = hashes[("a", "0")] != hashes[("a", "1")]
    print(f"same command, two processes: {'identical' if same else 'DIFFERENT'}; "
          f"another seed: {'different' if other else 'SAME'}")  # fmt: skip


if __name__ == "__main__":
    main()
