"""Fault injection: SIGKILL ``skelem train`` and ``skelem restore`` at random points, resume with
the same command, count how many runs end bit-identical to an uninterrupted one.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fault_injection.py \\
        [--train 20] [--atomic 21] [--zarr 20] [--seed 0] [--work /tmp/skelem-faults] \\
        [--json benchmarks/fault_injection.json] [--workers 1]

Every command is a real process (``python -m skelem.cli.main``) in its own process group,
killed with SIGKILL (the group: a streamed restore's workers die with it). Training: a tiny
phantom (9 x 32 x 32, factor 4), tiny networks, every stage (skeleton, refiner, alignment,
diffusion peer), a checkpoint every 4 steps; each trial is killed once, either at a random time
after the model folder appears or during a random one of its atomic writes (a temporary
``.partial`` file seen), then resumed with the same command. Restores: the trained tiny model
(method skelem, seed 0) on a 9 x 48 x 48 phantom, to TIFF, NPY and HDF5 (written whole:
after a kill the output is absent or complete) and to OME-Zarr through the command line (killed
after a random number of chunks, then resumed). After every kill, each checkpoint, manifest,
weights file and output under a final name must load whole (``faults.check_no_false_complete``);
at the end each trial is compared with the uninterrupted run (weights and config byte for
byte, the manifest but for its times, checkpoint tensors; output pixels, voxel size and
provenance but for the command line).

The shared machinery is ``tests/reliability/faults.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from reliability import faults  # noqa: E402

ATOMIC_FORMATS = ("r.tif", "r.npy", "r.h5")


def _trial_folder(work: Path, kind: str, index: int) -> Path:
    folder = work / kind / f"{index:02d}"
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def train_trials(work: Path, inputs: Path, count: int, rng: random.Random) -> list[dict]:
    """``count`` training runs, each killed once and resumed; one record per run."""
    reference = work / "reference"
    timing = faults.run_and_kill(
        faults.TRAIN_ARGS, reference, faults.exists(reference / "model" / "skelem-model.json"),
        float("inf"),
    )  # fmt: skip
    work_seconds = timing.seconds - (timing.fired_at or 0.0)
    print(f"reference training: {timing.seconds:.1f} s ({work_seconds:.1f} s after the manifest)")
    records = []
    for index in range(count):
        folder = _trial_folder(work, "train", index)
        faults.link_inputs(inputs, folder, ("acq.tif", "tiny.json"))
        model = folder / "model"
        if index % 2 == 0:
            name, delay = "random time", rng.uniform(0, 0.8 * work_seconds)
            trigger = faults.exists(model / "skelem-model.json")
        else:
            nth = rng.randint(1, 10)  # of the ~10 writes the polling sees in a run
            name, delay = f"during write #{nth}", rng.uniform(0, 0.005)
            trigger = faults.writing_partial(model, model / "checkpoints", nth=nth)
        kill = faults.run_and_kill(faults.TRAIN_ARGS, folder, trigger, delay, name)
        left = faults.check_no_false_complete(folder)
        state = faults.model_state(model) if model.exists() else "no model folder"
        faults.run_to_end(faults.TRAIN_ARGS, folder)
        differences = faults.compare_models(reference / "model", model)
        records.append(
            {**asdict(kill), "state_after_kill": state, "invalid_after_kill": left,
             "differences": differences, "identical": not differences}
        )  # fmt: skip
        print(f"train {index:2d} {name:18s} killed={kill.killed!s:5s} {state}: "
              f"{'identical' if not differences else differences}; invalid {left}")  # fmt: skip
    return records


def restore_trials(
    work: Path,
    inputs: Path,
    outputs: tuple[str, ...],
    count: int,
    rng: random.Random,
    workers: int | None = None,
) -> list[dict]:
    """``count`` restores cycling over ``outputs``, each killed once and run again; OME-Zarr
    outputs on ``workers`` Dask workers (``None``: the command's default, one per core)."""

    def restore_args(output: str) -> list[str]:
        pool = ["--workers", str(workers)] if workers and output.endswith(".zarr") else []
        return [*faults.RESTORE_ARGS, "-o", output, *pool]

    reference = work / "reference"
    seconds = {}
    for output in outputs:
        if not (reference / output).exists():
            seconds[output] = faults.run_to_end(restore_args(output), reference)
            print(f"reference restore to {output}: {seconds[output]:.1f} s")
    chunks = sum(1 for p in (reference / "r.ome.zarr").rglob("*") if p.is_file()) or 1
    records = []
    for index in range(count):
        output = outputs[index % len(outputs)]
        args = restore_args(output)
        folder = _trial_folder(work, "restore", index)
        faults.link_inputs(inputs, folder, ("big.tif",))
        (folder / "model").symlink_to(reference / "model", target_is_directory=True)
        if output.endswith(".zarr"):
            files = rng.randint(1, chunks - 1)
            name, delay = f"after {files} store files", 0.0
            trigger = faults.files_at_least(folder, files, output)
        elif (index // len(outputs)) % 2 == 0:
            name, delay = "random time", rng.uniform(0, seconds.get(output, 10.0))
            trigger = lambda: True  # noqa: E731
        else:
            name, delay = "during the write", rng.uniform(0, 0.003)
            trigger = faults.writing_partial(folder)
        kill = faults.run_and_kill(args, folder, trigger, delay, name)
        left = faults.check_no_false_complete(folder, reference)
        complete_after_kill = (folder / output).exists()
        if not complete_after_kill:
            faults.run_to_end(args, folder)
        differences = faults.compare_outputs(reference / output, folder / output)
        records.append(
            {**asdict(kill), "output": output, "output_after_kill": complete_after_kill,
             "invalid_after_kill": left, "differences": differences,
             "identical": not differences}
        )  # fmt: skip
        print(f"restore {index:2d} {output:11s} {name:22s} killed={kill.killed!s:5s} "
              f"output after kill: {complete_after_kill!s:5s}: "
              f"{'identical' if not differences else differences}; invalid {left}")  # fmt: skip
    return records


def _summary(records: list[dict]) -> str:
    killed = sum(r["killed"] for r in records)
    identical = sum(r["identical"] for r in records)
    invalid = sum(bool(r["invalid_after_kill"]) for r in records)
    return (f"{identical}/{len(records)} bit-identical ({killed} killed before the end); "
            f"{invalid} left a file under a final name that does not load whole")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=20, help="training runs to kill")
    parser.add_argument("--atomic", type=int, default=21, help="TIFF/NPY/HDF5 restores to kill")
    parser.add_argument("--zarr", type=int, default=20, help="OME-Zarr restores to kill")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/skelem-faults"))
    parser.add_argument("--json", type=Path, default=None, help="write every record here")
    parser.add_argument(
        "--workers", type=int, default=None,
        help="Dask workers of the OME-Zarr restores (default: the command's, one per core)",
    )  # fmt: skip
    args = parser.parse_args()

    rng = random.Random(args.seed)
    inputs = args.work / "inputs"
    shutil.rmtree(args.work, ignore_errors=True)
    faults.make_inputs(inputs, restore_shape=(9, 48, 48))
    faults.link_inputs(inputs, args.work / "reference", ("acq.tif", "big.tif", "tiny.json"))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
        cwd=Path(__file__).parent,
    ).stdout.strip()  # fmt: skip
    results: dict = {"commit": commit, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                     "workers": args.workers}  # fmt: skip
    start = time.perf_counter()

    def save() -> None:
        results["seconds"] = round(time.perf_counter() - start, 1)
        if args.json is not None:
            args.json.write_text(json.dumps(results, indent=1, default=str))

    results["train"] = train_trials(args.work, inputs, args.train, rng)
    save()
    if args.atomic:
        results["atomic"] = restore_trials(args.work, inputs, ATOMIC_FORMATS, args.atomic, rng)
        save()
    if args.zarr:
        results["zarr"] = restore_trials(
            args.work, inputs, ("r.ome.zarr",), args.zarr, rng, args.workers
        )
        save()
    for kind in ("train", "atomic", "zarr"):
        if results.get(kind):
            print(f"{kind}: {_summary(results[kind])}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
