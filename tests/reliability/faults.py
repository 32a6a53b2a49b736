"""Fault injection: run ``skelem`` commands as real processes, SIGKILL them, resume, compare.

Shared by ``tests/reliability/test_fault_injection.py`` (a few kills) and
``benchmarks/fault_injection.py`` (20 or more). A kill waits for a *trigger* (the model
folder's manifest appears, a store starts, a temporary ``.partial`` file is being written), then
a random delay, and kills the command's whole process group (a streamed restore may run its
work in child processes). After every kill :func:`check_no_false_complete` opens every file
under a final (non-temporary) name and demands it be complete; the same command is then run
again to the end and :func:`compare_models` / :func:`compare_outputs` compare the result with an
uninterrupted run, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The tiny training run: every stage, networks of 4 channels and 2 levels, patches of 16 px,
#: a checkpoint every few steps so that kills fall before, on and after checkpoints.
TINY_TRAINING = {
    "degradation": {"factor": 4},
    "skeleton": {"channels": 4, "depth": 2},
    "refiner": {"channels": 4, "depth": 2},
    "diffusion_peer": {"channels": 4, "depth": 2},
    "skeleton_training": {"iterations": 12, "batch_size": 2, "patch_size": 16,
                          "checkpoint_every": 4},
    "refiner_training": {"iterations": 12, "batch_size": 2, "patch_size": 16,
                         "checkpoint_every": 4},
    "alignment_training": {"iterations": 3, "batch_size": 2, "patch_size": 16,
                           "checkpoint_every": 1},
    "device": "cpu",
}  # fmt: skip

TRAIN_ARGS = ["train", "acq.tif", "-o", "model", "--config", "tiny.json", "--stages", "all", "-q"]

#: The restore of ``big.tif`` with the trained tiny model (method skelem: sampling, seeded);
#: add ``-o OUTPUT``. Small blocks, so a streamed output has many.
RESTORE_ARGS = ["restore", "big.tif", "--model", "model", "-q", "--seed", "0", "--block", "8,32,32"]

#: Manifest fields that say when and how long, not what: they differ between any two runs.
VOLATILE_PROVENANCE = ("created", "training_seconds")

PARTIAL = ".partial"


def skelem_command(args: list[str]) -> list[str]:
    """The command line running ``skelem ARGS`` with this interpreter."""
    return [sys.executable, "-m", "skelem.cli.main", *args]


def child_env() -> dict[str, str]:
    """The environment of the killed and resumed commands: one thread, as the references."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def make_inputs(folder: Path, restore_shape: tuple[int, int, int] = (17, 64, 64)) -> None:
    """``acq.tif`` (9 x 32 x 32, factor 4, for training), ``big.tif`` (``restore_shape``, for
    restoring) and ``tiny.json`` (:data:`TINY_TRAINING`) in ``folder``."""
    from skelem.data.phantoms import em_phantom
    from skelem.io import write_volume

    folder.mkdir(parents=True, exist_ok=True)
    for name, shape, seed in (("acq.tif", (9, 32, 32), 0), ("big.tif", restore_shape, 1)):
        z, y, x = shape
        iso, _ = em_phantom((4 * (z - 1) + 1, y, x), seed=seed)
        write_volume(folder / name, (iso[::4] * 255).astype(np.uint8), (0.04, 0.01, 0.01))
    (folder / "tiny.json").write_text(json.dumps(TINY_TRAINING, indent=1))


def link_inputs(source: Path, folder: Path, names: tuple[str, ...]) -> None:
    """Hard-link (or copy) the named inputs of ``source`` into a trial's ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = folder / name
        if (source / name).is_dir():
            target.symlink_to((source / name).resolve(), target_is_directory=True)
        else:
            os.link(source / name, target)


# ------------------------------------------------------------------------------ killing


@dataclass
class Kill:
    """One attempted kill: ``killed`` is false when the command finished first."""

    trigger: str
    delay: float
    killed: bool
    seconds: float
    fired_at: float | None = None  # seconds after the start when the trigger held


def run_to_end(args: list[str], cwd: Path, timeout: float = 600) -> float:
    """Run ``skelem ARGS`` in ``cwd`` to the end; its wall time (an exit code other than 0
    raises, with its stderr)."""
    start = time.perf_counter()
    result = subprocess.run(
        skelem_command(args), cwd=cwd, env=child_env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"skelem {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return time.perf_counter() - start


def run_and_kill(
    args: list[str],
    cwd: Path,
    trigger: Callable[[], bool],
    delay: float,
    name: str = "",
    timeout: float = 600,
) -> Kill:
    """Start ``skelem ARGS`` in its own process group; once ``trigger()`` holds, wait ``delay``
    seconds and SIGKILL the group (the command and any process it started)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        skelem_command(args), cwd=cwd, env=child_env(), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    fired: float | None = None
    try:
        while process.poll() is None:
            now = time.perf_counter()
            if now - start > timeout:
                raise AssertionError(f"skelem {' '.join(args)} ran over {timeout} s")
            if fired is None and trigger():
                fired = now
            if fired is not None and now - fired >= delay:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return Kill(name, delay, True, time.perf_counter() - start, fired - start)
            time.sleep(0.002)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise AssertionError(f"skelem {' '.join(args)} exited {process.returncode}: {stderr}")
    fired_at = None if fired is None else fired - start
    return Kill(name, delay, False, time.perf_counter() - start, fired_at)


def exists(path: Path) -> Callable[[], bool]:
    """Trigger: ``path`` exists."""
    return path.exists


def files_at_least(folder: Path, count: int, name: str = "") -> Callable[[], bool]:
    """Trigger: the entries of ``folder`` whose name holds ``name`` hold at least ``count``
    files (e.g. chunks of a growing store, whatever its temporary name)."""

    def check() -> bool:
        found = 0
        for entry in folder.iterdir():
            if name in entry.name and entry.is_dir():
                found += sum(1 for p in entry.rglob("*") if p.is_file())
        return found >= count

    return check


def writing_partial(*folders: Path, nth: int = 1) -> Callable[[], bool]:
    """Trigger: the ``nth`` temporary ``.partial`` file or folder seen in one of ``folders``
    (counted by name, each as it appears), i.e. during the ``nth`` atomic write seen."""
    seen: set[str] = set()

    def check() -> bool:
        for folder in folders:
            try:
                seen.update(e.name for e in os.scandir(folder) if PARTIAL in e.name)
            except FileNotFoundError:
                continue
        return len(seen) >= nth

    return check


# ------------------------------------------------------------------ what a kill leaves


def is_temporary(path: Path, root: Path) -> bool:
    """Whether ``path`` is (inside) a temporary ``.partial`` file or store."""
    return any(PARTIAL in part for part in path.relative_to(root).parts)


def check_no_false_complete(folder: Path, reference: Path | None = None) -> list[str]:
    """Open every file under a final name in ``folder`` and return what is not complete.

    The model manifest must load with every network it lists (and the weights pass their
    recorded SHA-256), every ``.safetensors`` file and checkpoint must load whole, every
    ``.json`` must parse, and a restored output (``r.*``) must read back equal to the one of the
    same name in ``reference``. Temporary ``.partial`` files and stores are skipped: their names
    say they are not finished.

    Returns
    -------
    list of str
        One line per file that looks finished but is not; empty when all is well.
    """
    import torch
    from safetensors.torch import load_file

    from skelem.models.artifact import MANIFEST, WEIGHT_FILES, load_artifact

    problems: list[str] = []
    for path in sorted(folder.rglob("*")):
        if is_temporary(path, folder) or path.is_symlink() or path.is_dir():
            continue
        if path.parent == folder and path.name in ("acq.tif", "big.tif", "tiny.json"):
            continue
        if ".zarr" in str(path.relative_to(folder)):
            continue  # stores are checked as a whole below
        try:
            if path.name == MANIFEST:
                artifact = load_artifact(path.parent)
                for network in WEIGHT_FILES:
                    if artifact.has(network):
                        artifact.load_network(network)
            elif path.suffix == ".safetensors":
                load_file(path)
            elif path.suffix == ".pt":
                state = torch.load(path, map_location="cpu", weights_only=False)
                assert {"model", "ema", "optimizer", "step"} <= set(state)
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.name.startswith("r.") and reference is not None:
                problems += compare_outputs(reference / path.name, path)
        except Exception as err:  # noqa: BLE001 - any failure is what we look for
            problems.append(f"{path.relative_to(folder)}: {err.__class__.__name__}: {err}")
    for store in folder.glob("r*.zarr"):
        if reference is not None and _opens(store):  # a store marked unfinished may refuse
            problems += compare_outputs(reference / store.name, store)
    return problems


# ----------------------------------------------------------------------- comparisons


def _opens(path: Path) -> bool:
    from skelem.io import open_volume

    try:
        open_volume(path).read()
    except Exception:  # noqa: BLE001 - refusing to open an unfinished store is fine
        return False
    return True


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(path: Path) -> dict:
    payload = json.loads(path.read_text())
    for key in VOLATILE_PROVENANCE:
        payload.get("provenance", {}).pop(key, None)
    return payload


def compare_models(reference: Path, resumed: Path) -> list[str]:
    """Differences between two trained model folders: the files under final names, every
    weights file and ``config.json`` byte for byte, the manifest but for its times, and the
    tensors and step of every checkpoint.

    Returns
    -------
    list of str
        One line per difference; empty when the resumed model is the reference's, bit for bit.
    """
    import torch

    def final_files(root: Path) -> set[str]:
        return {
            str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and not is_temporary(p, root)
        }  # fmt: skip

    differences: list[str] = []
    names = final_files(reference)
    if final_files(resumed) != names:
        differences.append(f"files {sorted(final_files(resumed) ^ names)} differ")
    for name in sorted(names & final_files(resumed)):
        ours, theirs = reference / name, resumed / name
        if name.endswith((".safetensors", "config.json")):
            same = _sha256(ours) == _sha256(theirs)
        elif name.endswith("skelem-model.json"):
            same = _manifest(ours) == _manifest(theirs)
        elif name.endswith(".pt"):
            a, b = (torch.load(p, map_location="cpu", weights_only=False) for p in (ours, theirs))
            same = a["step"] == b["step"] and all(
                torch.equal(a[part][key], b[part][key]) for part in ("model", "ema")
                for key in a[part]
            )  # fmt: skip
        else:
            same = True
        if not same:
            differences.append(f"{name} differs")
    return differences


def compare_outputs(reference: Path, output: Path) -> list[str]:
    """Differences between two restored outputs: pixels, data type, voxel size and the
    provenance record (but for the command line, which names a process).

    Returns
    -------
    list of str
        One line per difference; empty when they are equal bit for bit.
    """
    from skelem.io import open_volume
    from skelem.io.writers import DEFAULT_H5_DATASET

    def uri(path: Path) -> str:
        return f"{path}:/{DEFAULT_H5_DATASET}" if path.suffix == ".h5" else str(path)

    try:
        ours, theirs = open_volume(uri(reference)), open_volume(uri(output))
        a, b = ours.read(), theirs.read()
    except Exception as err:  # noqa: BLE001
        return [f"{output.name}: does not read back ({err.__class__.__name__}: {err})"]
    differences = []
    if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
        differences.append(f"{output.name}: pixels differ")
    if ours.voxel_size != theirs.voxel_size:
        differences.append(f"{output.name}: voxel size differs")
    if output.suffix == ".npy":  # provenance in the sidecar
        from skelem.io.sidecar import read_npy_provenance

        meta = [dict(read_npy_provenance(p) or {}) for p in (reference, output)]
    else:
        meta = [dict(v.metadata or {}) for v in (ours, theirs)]
    for record in meta:
        record.pop("command_line", None)
    if meta[0] != meta[1]:
        differences.append(f"{output.name}: provenance differs")
    return differences


def model_state(folder: Path) -> str:
    """What a killed training left, in a few words: stages done, checkpoints and their steps."""
    import torch

    manifest = folder / "skelem-model.json"
    stages = json.loads(manifest.read_text())["stages"] if manifest.exists() else None
    steps = []
    for path in sorted((folder / "checkpoints").glob("*.pt")):
        state = torch.load(path, map_location="cpu", weights_only=False)
        steps.append(f"{path.stem}@{state['step']}")
    partials = sum(1 for p in folder.rglob("*") if PARTIAL in p.name)
    done = "no manifest" if stages is None else f"stages [{','.join(stages)}]"
    return f"{done}; checkpoints {' '.join(steps) or '-'}; {partials} temporary file(s)"
