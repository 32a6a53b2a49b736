"""Roofline probe: how far the networks and a whole ``skelem restore`` are from the matrix rate.

In one run:

1. **matrix rate**: single-precision ``torch.mm`` of two 2048 x 2048 matrices, with 2 threads (the
   machine's cores) and with 1 thread; the best of ``--reps`` repetitions (GFLOP/s).
2. **networks**: each network of the model at its real call shape in a restore of the t2 x4
   volume (the slices of the default block padded to the network's multiple, as many per call
   as :meth:`SliceEngine.slices_per_call` gives), FLOPs counted by
   ``torch.utils.flop_counter.FlopCounterMode``; the median forward time over ``--reps``
   repetitions, the backends interleaved, at 1 and 2 threads; achieved GFLOP/s and its share of
   the same thread count's matrix rate.
3. **profile by phase** (``--profile``): one ``skelem restore`` run in this process (the CLI
   called in-process, output a TIFF so the blocks run here and not on Dask workers), every second
   of its wall time given to exactly one phase: network calls, reading, normalisation,
   interpolation, noise, blending, writing, setup (model load, receptive field), the engine's
   own tensor work (padding, sampler arithmetic), and the rest (Python, transposes, checks).
   Nested phases are exclusive (a network call inside the engine counts as network only).

Runs unchanged at an older commit (``PYTHONPATH=/path/to/old/src``): the phases it cannot find
there are left out, the backends it does not know are skipped.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/roofline.py -o bench-out/roofline \
        [--model DIR] [--profile skeleton skelem] \\
        [--backends torch-nchw torch onnxruntime torch-compile]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import importlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t2" / "raw.tif"
PRETRAINED = REPO / "src" / "skelem" / "pretrained_models" / "fibsem_x4"


def matrix_rate(threads: int, size: int = 2048, reps: int = 5) -> float:
    """Best GFLOP/s of a float32 ``size x size`` matrix product with ``threads`` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        torch.mm(a, b)
        best = min(_seconds(lambda: torch.mm(a, b)) for _ in range(reps))
    finally:
        torch.set_num_threads(previous)
    return 2 * size**3 / best / 1e9


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _load_nets(model_dir: Path) -> dict[str, torch.nn.Module]:
    try:
        from skelem.models.artifact import load_artifact
    except ImportError:  # older layout: the networks are loaded by the engine module
        return {}
    artifact = load_artifact(model_dir)
    return {n: artifact.load_network(n, "cpu") for n in ("skeleton", "refiner")}


def _runner(net: torch.nn.Module, backend: str):
    """The network prepared for ``backend``, or None when this checkout has no such backend.

    ``torch-compile`` is not a package backend: ``torch.compile`` (inductor) of the channels_last
    network with ``freezing`` (weights as constants: oneDNN's fused convolution + activation
    kernels, pre-packed weights), compiled at its warm-up call. Inductor's kernels keep the
    thread count of their first compile (the 1-thread pass): read its rows at 1 thread."""
    if backend == "torch-nchw":
        return net
    if backend == "torch-compile":
        model = copy.deepcopy(net).eval().to(memory_format=torch.channels_last)
        compiled = torch.compile(model, dynamic=False, options={"freezing": True})

        def run(x, *args):
            with torch.no_grad():
                return compiled(x.contiguous(memory_format=torch.channels_last), *args)

        return run
    try:
        from skelem.inference.backends import prepare_network
    except ImportError:
        return None
    return prepare_network(net, backend)


def network_rows(model_dir: Path, backends: list[str], reps: int) -> tuple[list, dict]:
    """Achieved GFLOP/s of each network at its real call shape, backends interleaved.

    Each repetition also times one ``torch.mm`` at the same thread count, so the matrix rate is
    measured in the same minutes as the networks (the CPU is shared: its load varies by the
    minute). Rates are given for the fastest repetition of each (the least disturbed) and for
    the median.
    """
    nets = _load_nets(model_dir)
    if not nets:
        return [], {}
    # t2 x4 with the default block: one block, XZ and YZ slices of 249 x 250, padded to 256 x 256
    h, w, multiple = 249, 250, nets["skeleton"].multiple
    padded = (-(-h // multiple) * multiple, -(-w // multiple) * multiple)
    rows, rates = [], {}
    size = 1024
    a, b = torch.randn(size, size), torch.randn(size, size)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        cases = []
        for name, net in nets.items():
            per_call = _slices_per_call(net, h, w, multiple)
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(per_call, net.in_channels, *padded, generator=gen)
            args = (torch.full((per_call,), 200, dtype=torch.long),) if net.time_embedding else ()
            with FlopCounterMode(display=False) as counter, torch.inference_mode():
                net(x, *args)
            flops = counter.get_total_flops()
            for backend in backends:
                runner = _runner(net, backend)
                if runner is None:
                    continue
                with torch.inference_mode():
                    runner(x, *args)  # warm-up (oneDNN primitive creation, ORT arena)
                cases.append((name, backend, runner, x, args, flops, []))
        mm_times = []
        torch.mm(a, b)
        for _ in range(reps):
            mm_times.append(_seconds(lambda: torch.mm(a, b)))
            for _, _, runner, x, args, _, times in cases:
                with torch.inference_mode():
                    times.append(_seconds(lambda r=runner, x=x, a=args: r(x, *a)))
        mm_best = 2 * size**3 / min(mm_times) / 1e9
        mm_median = 2 * size**3 / statistics.median(mm_times) / 1e9
        rates[threads] = {"best": round(mm_best, 1), "median": round(mm_median, 1)}
        print({"threads": threads, "mm_gflops": rates[threads]}, flush=True)
        for name, backend, _, x, _, flops, times in cases:
            best, median = flops / min(times) / 1e9, flops / statistics.median(times) / 1e9
            rows.append(
                {
                    "network": name,
                    "backend": backend,
                    "threads": threads,
                    "call_shape": list(x.shape),
                    "gflop": round(flops / 1e9, 2),
                    "seconds_median": round(statistics.median(times), 4),
                    "gflops_best": round(best, 1),
                    "gflops_median": round(median, 1),
                    "percent_of_mm_best": round(100 * best / mm_best, 1),
                    "percent_of_mm_median": round(100 * median / mm_median, 1),
                }
            )
            print(rows[-1], flush=True)
    torch.set_num_threads(1)
    return rows, rates


def _slices_per_call(net: torch.nn.Module, h: int, w: int, multiple: int) -> int:
    try:
        from skelem.inference.engine import SliceEngine

        engine = SliceEngine(method="skeleton", device=torch.device("cpu"), multiple=multiple)
        return engine.slices_per_call(h, w, net)
    except (ImportError, TypeError, AttributeError):
        return 1


# ---------------------------------------------------------------------------------------------
# profile by phase

#: (phase, module, attribute): every binding of the attribute's original object in a loaded
#: skelem module is replaced by a timed wrapper (so ``from x import f`` copies are caught too).
PHASE_TARGETS = [
    ("network", "skelem.models.unet", "UNet2D.forward"),
    ("network", "skelem.inference.backends", "OnnxRuntimeRunner.forward"),
    ("read", "skelem.inference.runner", "process_block"),
    ("read", "skelem.inference.runner", "_process_block"),
    ("normalise", "skelem.data.normalize", "PercentileNormalizer.normalize"),
    ("normalise", "skelem.data.normalize", "PercentileNormalizer.denormalize"),
    ("interpolation", "skelem.data.interpolation", "upsample"),
    ("noise", "skelem.diffusion.noise", "voxel_noise_batch"),
    ("noise", "skelem.diffusion.noise", "coordinate_noise_batch"),
    ("blend", "skelem.inference.blend", "BlendAccumulator.add"),
    ("blend", "skelem.inference.blend", "BlendAccumulator.result"),
    ("write", "tifffile", "TiffWriter.write"),
    ("write", "zarr", "Array.__setitem__"),
    ("setup", "skelem.models.unet", "measured_receptive_field"),
    ("setup", "skelem.models.artifact", "ModelArtifact.load_network"),
    ("engine", "skelem.inference.engine", "SliceEngine.restore"),
    ("engine", "skelem.inference.engine", "SliceEngine.restore_joint"),
]


class PhaseClock:
    """Exclusive wall time per phase: a nested call's time is taken out of its caller's phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.stack: list[list] = []

    @contextlib.contextmanager
    def phase(self, name: str):
        frame = [name, time.perf_counter(), 0.0]
        self.stack.append(frame)
        try:
            yield
        finally:
            self.stack.pop()
            total = time.perf_counter() - frame[1]
            self.seconds[name] = self.seconds.get(name, 0.0) + total - frame[2]
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.stack:
                self.stack[-1][2] += total

    def wrap(self, name: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            with self.phase(name):
                return fn(*args, **kwargs)

        return timed

    def wrap_reader(self, fn):
        """``process_block(read_block, process, block)``: time ``read_block`` as reading only."""

        @functools.wraps(fn)
        def timed(read_block, *args, **kwargs):
            return fn(self.wrap("read", read_block), *args, **kwargs)

        return timed


def install_phases(clock: PhaseClock) -> list[str]:
    """Patch every target found; return the targets patched."""
    for module in (
        "skelem.inference.methods",
        "skelem.inference.restore",
        "skelem.inference.runner",
        "skelem.inference.dask_runner",
        "skelem.inference.backends",
        "skelem.cli.main",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    patched = []
    for phase, module_name, attr in PHASE_TARGETS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        owner_name, _, name = attr.rpartition(".")
        owner = getattr(module, owner_name, None) if owner_name else module
        original = getattr(owner, name, None) if owner is not None else None
        if original is None:
            continue
        is_reader = name in ("process_block", "_process_block")
        wrapped = clock.wrap_reader(original) if is_reader else clock.wrap(phase, original)
        setattr(owner, name, wrapped)
        if not owner_name:  # a function: rebind the copies imported elsewhere
            for mod in list(sys.modules.values()):
                if (
                    getattr(mod, "__name__", "").startswith("skelem")
                    and getattr(mod, name, None) is original
                ):
                    setattr(mod, name, wrapped)
        patched.append(f"{module_name}.{attr}")
    return patched


def profile_restore(src: Path, out: Path, method: str, model: Path, extra: list[str]) -> dict:
    """Run ``skelem restore src -o out`` in this process and split its wall time by phase."""
    from skelem.cli.main import cli

    with contextlib.suppress(ImportError):  # older layout: the commands register on import
        importlib.import_module("skelem.cli.commands")
    clock = PhaseClock()
    patched = install_phases(clock)
    args = [
        "restore",
        str(src),
        "-o",
        str(out),
        "--method",
        method,
        "--model",
        str(model),
        "-q",
        "--overwrite",
        *extra,
    ]
    start = time.perf_counter()
    try:
        cli.main(args, standalone_mode=False)
    finally:
        wall = time.perf_counter() - start
    phases = dict(sorted(clock.seconds.items(), key=lambda kv: -kv[1]))
    phases["other (python, transposes, checks)"] = wall - sum(clock.seconds.values())
    return {
        "method": method,
        "extra_args": extra,
        "wall_seconds": round(wall, 2),
        "phases": {k: round(v, 2) for k, v in phases.items()},
        "shares_percent": {k: round(100 * v / wall, 1) for k, v in phases.items()},
        "calls": clock.calls,
        "patched": patched,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", default="bench-out/roofline")
    parser.add_argument(
        "--model", default=str(PRETRAINED), help="model folder (default: pretrained x4)"
    )
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--backends", nargs="+", default=["torch-nchw", "torch", "onnxruntime"])
    parser.add_argument("--profile", nargs="*", default=[], help="methods to profile by phase")
    parser.add_argument("--restore-args", nargs="*", default=[], help="extra skelem restore flags")
    parser.add_argument("--skip-networks", action="store_true")
    parser.add_argument(
        "--crop", type=int, default=None, help="profile only the first CROP x CROP voxels in YX"
    )
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    big = {threads: round(matrix_rate(threads, reps=3), 1) for threads in (2, 1)}
    print({"mm_gflops_2048": big}, flush=True)
    rows, rates = [], {}
    if not args.skip_networks:
        rows, rates = network_rows(Path(args.model), args.backends, args.reps)
    profiles = []
    if args.profile:
        import tifffile

        from skelem.io import write_volume

        crop = args.crop or 250
        src = out / ("t2_x4.ome.zarr" if args.crop is None else f"t2_x4_{crop}.ome.zarr")
        if not src.exists():
            data = tifffile.imread(DATA)[::4, :crop, :crop]
            write_volume(src, data, (0.04, 0.01, 0.01))
        extra = [a for flag in args.restore_args for a in flag.split()]
        for method in args.profile:
            profiles.append(
                profile_restore(
                    src, out / f"restored_{method}.tif", method, Path(args.model), extra
                )
            )
            print(profiles[-1], flush=True)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "command": " ".join(sys.argv),
        "python_path": os.environ.get("PYTHONPATH", ""),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs",
        "torch": torch.__version__,
    }
    result = {
        "meta": meta,
        "mm_gflops_2048_best": big,
        "mm_gflops_1024": rates,
        "networks": rows,
        "profiles": profiles,
    }
    (out / "roofline.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
