"""CPU speed: the network levers each alone, streamed restores and training against an old commit.

Three parts, each measured A vs B interleaved in one run (repetition k of every variant before
repetition k+1 of any), medians reported, because the CPU is shared with other jobs:

``levers``  in this process, the skeleton and the refiner at their call shape of the t2 x4
            restore (2 slices of 256 x 256 per call): plain PyTorch (NCHW, the baseline), each lever
            alone (channels_last, ONNX Runtime, 2 threads instead of 1; with ``--compile``
            ``torch.compile`` (inductor) plain and with ``freezing``, cold and warm compile times
            reported apart) and the pixel budget per call (1, 2, 4, 8 slices of 256 x 256 per
            call, time per slice). Every lever's output is compared with the
            baseline's (max abs difference).
``restore`` ``skelem restore t2_x4.ome.zarr -o out.ome.zarr`` in fresh processes, one per variant
            and repetition: the old commit (``--base-src``, its own PYTHONPATH, the pretrained
            model stripped of the config keys it does not know) and this checkout's backends;
            wall seconds, output voxels/s and peak RSS (``/usr/bin/time``). Optional allocator
            variants (glibc tunables in the environment).
``train``   iterations per second of each training stage (skeleton, refiner, alignment), from
            the progress events of ``train_model`` on the t2 x4 volume, old commit vs this
            checkout, in fresh processes.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run_speed.py levers -o bench-out/speed
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run_speed.py restore -o bench-out/speed \
        --base-src /tmp/base563/src [--methods skeleton skelem] [--reps 2]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run_speed.py train -o bench-out/speed \
        --base-src /tmp/base563/src [--iterations 30]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run_speed.py autotune -o bench-out/speed

(``git worktree add /tmp/base563 563f5f7`` makes the old commit's tree.)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fibsem_medulla_t2" / "raw.tif"
PRETRAINED = REPO / "src" / "skelem" / "pretrained_models" / "fibsem_x4"


def _meta(args: argparse.Namespace) -> dict:
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "commit": commit,
        "command": " ".join(sys.argv),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs",
        "load_average": os.getloadavg(),
    }


def _save(out: Path, name: str, payload: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2))


# ---------------------------------------------------------------------------------------------
# levers


def _compiled_variants(net, x, t) -> list[tuple[str, object, dict]]:
    """``torch.compile`` (inductor) of ``net``: plain, and with ``freezing`` on the channels_last
    network (weights folded as constants, so oneDNN's fused convolution + activation kernels and
    pre-packed weights are used). Each is compiled twice: ``cold`` in an empty inductor cache (a
    fresh temporary folder), ``warm`` after ``torch._dynamo.reset()`` with that cache filled (what
    the next process on the machine pays). Returns (name, compiled callable, seconds)."""
    import tempfile

    import torch
    import torch._inductor.config as inductor_config

    previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    out = []
    for key, freezing, layout in (
        ("torch.compile (inductor)", False, torch.contiguous_format),
        ("torch.compile + freezing, channels_last", True, torch.channels_last),
    ):
        seconds = {}
        with tempfile.TemporaryDirectory() as cache:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
            for run in ("cold", "warm"):
                torch._dynamo.reset()
                model = copy.deepcopy(net).eval().to(memory_format=layout)
                xl = x.contiguous(memory_format=layout)
                start = time.perf_counter()
                with inductor_config.patch(freezing=freezing):
                    compiled = torch.compile(model, dynamic=False)
                    with torch.no_grad():
                        compiled(xl, *t)
                seconds[run] = round(time.perf_counter() - start, 1)

        def call(xx, *tt, fn=compiled, layout=layout):
            return fn(xx.contiguous(memory_format=layout), *tt)

        out.append((key, call, seconds))
    if previous is None:
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    else:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous
    return out


def levers(args: argparse.Namespace) -> dict:
    import torch

    from skelem.inference.backends import prepare_network
    from skelem.models.artifact import load_artifact

    torch.set_num_threads(1)
    artifact = load_artifact(args.model)
    rows = []
    for name in ("skeleton", "refiner"):
        net = artifact.load_network(name, "cpu")
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, net.in_channels, 256, 256, generator=gen)
        t = (torch.full((2,), 200, dtype=torch.long),) if net.time_embedding else ()
        with torch.inference_mode():
            reference = net(x, *t)
        variants: dict[str, tuple] = {}  # name -> (callable, threads)
        variants["plain NCHW (baseline)"] = (net, 1)
        variants["channels_last"] = (prepare_network(copy.deepcopy(net), "torch"), 1)
        try:
            variants["onnxruntime"] = (prepare_network(copy.deepcopy(net), "onnxruntime"), 1)
        except Exception as err:  # noqa: BLE001 - the optional backend may be missing
            print(f"onnxruntime skipped: {err}")
        variants["2 threads (plain)"] = (net, 2)
        variants["channels_last, 2 threads"] = (variants["channels_last"][0], 2)
        compile_seconds: dict[str, dict] = {}
        if args.compile:
            for key, compiled, seconds in _compiled_variants(net, x, t):
                variants[key] = (compiled, 1)
                variants[f"{key}, 2 threads"] = (compiled, 2)
                compile_seconds[key] = compile_seconds[f"{key}, 2 threads"] = seconds
        diffs, times = {}, {k: [] for k in variants}
        for key, (fn, threads) in variants.items():
            torch.set_num_threads(threads)
            with torch.no_grad():  # not inference_mode: the compiled graphs were traced in no_grad
                diffs[key] = float((fn(x, *t) - reference).abs().max())
        for _ in range(args.reps):
            for key, (fn, threads) in variants.items():
                torch.set_num_threads(threads)
                with torch.no_grad():
                    start = time.perf_counter()
                    fn(x, *t)
                    times[key].append(time.perf_counter() - start)
        torch.set_num_threads(1)
        base = statistics.median(times["plain NCHW (baseline)"])
        for key in variants:
            median = statistics.median(times[key])
            rows.append(
                {
                    "network": name,
                    "lever": key,
                    "seconds_per_call": round(median, 4),
                    "speedup": round(base / median, 2),
                    "max_abs_diff": diffs[key],
                    "compile_seconds": compile_seconds.get(key),
                }
            )
            print(rows[-1], flush=True)
    # pixel budget per call: time per 256 x 256 slice, default backend, skeleton
    net = prepare_network(artifact.load_network("skeleton", "cpu"), "torch")
    batches = {b: torch.randn(b, net.in_channels, 256, 256) for b in (1, 2, 4, 8)}
    per_slice = {b: [] for b in batches}
    with torch.inference_mode():
        for xb in batches.values():
            net(xb)
        for _ in range(args.reps):
            for b, xb in batches.items():
                start = time.perf_counter()
                net(xb)
                per_slice[b].append((time.perf_counter() - start) / b)
    base = statistics.median(per_slice[2])
    for b in batches:
        median = statistics.median(per_slice[b])
        rows.append(
            {
                "network": "skeleton",
                "lever": f"call of {b} x 256 x 256 ({b * 65536 // 1024} Ki pixels)",
                "seconds_per_slice": round(median, 4),
                "speedup": round(base / median, 2),
            }
        )
        print(rows[-1], flush=True)
    return {"meta": _meta(args), "rows": rows}


# ---------------------------------------------------------------------------------------------
# restore

STRIP_CONFIG = r"""
import json, shutil, sys
from pathlib import Path
from pydantic import ValidationError
from skelem.config.models import ExperimentConfig
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copytree(src, dst, dirs_exist_ok=True)
manifest = json.loads((dst / "skelem-model.json").read_text())
cfg = manifest["config"]
while True:
    try:
        ExperimentConfig.model_validate(cfg)
        break
    except ValidationError as err:
        for e in err.errors():
            if e["type"] != "extra_forbidden":
                raise
            d = cfg
            for k in e["loc"][:-1]:
                d = d[k]
            d.pop(e["loc"][-1])
manifest["config"] = cfg
(dst / "skelem-model.json").write_text(json.dumps(manifest, indent=2))
(dst / "config.json").write_text(json.dumps(cfg, indent=2))
"""


def base_model(base_src: Path, out: Path, model: Path = PRETRAINED) -> Path:
    """``model`` with the config keys the old commit does not know removed."""
    dst = out / "model_for_base"
    if not dst.exists():
        env = {**os.environ, "PYTHONPATH": str(base_src)}
        subprocess.run(
            [sys.executable, "-c", STRIP_CONFIG, str(model), str(dst)], env=env, check=True
        )
    return dst


def _input(out: Path, crop: int | None = None) -> Path:
    """The t2 x4 acquisition (every 4th slice) as OME-Zarr; ``crop``: its first crop^2 in YX."""
    src = out / ("t2_x4.ome.zarr" if crop is None else f"t2_x4_{crop}.ome.zarr")
    if not src.exists():
        import tifffile

        from skelem.io import write_volume

        data = tifffile.imread(DATA)[::4]
        write_volume(src, data if crop is None else data[:, :crop, :crop], (0.04, 0.01, 0.01))
    return src


def _timed(cmd: list[str], env: dict) -> dict:
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "TIME %e %U %S %M", *cmd], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("TIME ")][-1].split()
    return {
        "wall": float(line[1]),
        "cpu": float(line[2]) + float(line[3]),
        "peak_mib": int(line[4]) / 1024,
    }


def restore(args: argparse.Namespace) -> dict:
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    src = _input(out, args.crop)
    n_out = 249 * (args.crop or 250) ** 2
    model = Path(args.model)  # the same networks for both commits (the old one cannot load
    # a skeleton with neighbouring slices as input: pass a model of 563f5f7's configuration)
    variants = []  # (label, pythonpath, model, extra args, extra env)
    if args.base_src:
        variants.append(
            (
                "563f5f7",
                str(args.base_src),
                base_model(Path(args.base_src), out, model),
                ["--blocks-per-process", "0"],
                {},
            )
        )
    here = str(REPO / "src")
    for backend in args.backends:
        variants.append(
            (
                f"now --backend {backend}",
                here,
                model,
                ["--backend", backend, "--workers", str(args.workers)],
                {},
            )
        )
    for tunable in args.allocator:
        key, _, value = tunable.partition("=")
        variants.append(
            (
                f"now torch, {tunable}",
                here,
                model,
                ["--workers", str(args.workers)],
                {key: value},
            )
        )
    results: dict[tuple[str, str], list[dict]] = {}
    for rep in range(args.reps):
        for method in args.methods:
            for label, path, model, extra, env_extra in variants:
                dst = out / f"restored_{method}.ome.zarr"
                shutil.rmtree(dst, ignore_errors=True)
                env = {**os.environ, "PYTHONPATH": path, **env_extra}
                cmd = [
                    sys.executable,
                    "-m",
                    "skelem.cli.main",
                    "restore",
                    str(src),
                    "-o",
                    str(dst),
                    "--method",
                    method,
                    "--model",
                    str(model),
                    "-q",
                    *extra,
                ]
                row = _timed(cmd, env)
                results.setdefault((method, label), []).append(row)
                print(rep, method, label, row, flush=True)
                shutil.rmtree(dst, ignore_errors=True)
    rows = []
    for method in args.methods:
        base = None
        for label, *_ in variants:
            runs = results[(method, label)]
            wall = statistics.median(r["wall"] for r in runs)
            base = base or wall
            rows.append(
                {
                    "method": method,
                    "variant": label,
                    "runs": len(runs),
                    "wall_seconds": round(wall, 1),
                    "cpu_seconds": round(statistics.median(r["cpu"] for r in runs), 1),
                    "voxels_per_second_M": round(n_out / wall / 1e6, 3),
                    "ratio_to_first": round(base / wall, 2),
                    "peak_rss_mib": round(max(r["peak_mib"] for r in runs)),
                }
            )
            print(rows[-1], flush=True)
    return {
        "meta": _meta(args),
        "rows": rows,
        "raw": {f"{m}|{v}": r for (m, v), r in results.items()},
    }


# ---------------------------------------------------------------------------------------------
# training

TRAIN_DRIVER = r"""
import json, sys, time
from pathlib import Path
from skelem.config.models import ExperimentConfig
from skelem.io import open_volume
from skelem.training.pipeline import train_model
volume_path, model_dir, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
stages = sys.argv[4].split(",")
cfg = {"degradation": {"factor": 4}, "device": "cpu"}
for stage, it in (("skeleton_training", iterations), ("refiner_training", iterations),
                  ("alignment_training", max(4, iterations // 3))):
    cfg[stage] = {"iterations": it, "checkpoint_every": 10**6}
config = ExperimentConfig.model_validate(cfg)
stamps = {}
def progress(event):
    stamps.setdefault(event.task, []).append((event.step, time.perf_counter()))
train_model(open_volume(volume_path), model_dir, config, stages=stages, progress=progress)
rates = {}
for task, marks in stamps.items():
    marks = [m for m in marks if isinstance(m[0], int)]
    if len(marks) > 4:
        (s0, t0), (s1, t1) = marks[2], marks[-1]  # skip the first steps (warm-up)
        rates[task] = (s1 - s0) / (t1 - t0)
print("RATES " + json.dumps(rates))
"""


def train(args: argparse.Namespace) -> dict:
    out = Path(args.output)
    src = _input(out)
    variants = [("now", str(REPO / "src"))]
    if args.base_src:
        variants.insert(0, ("563f5f7", str(args.base_src)))
    results: dict[str, list[dict]] = {}
    for rep in range(args.reps):
        for label, path in variants:
            model_dir = out / f"train_{label}_{rep}"
            shutil.rmtree(model_dir, ignore_errors=True)
            env = {**os.environ, "PYTHONPATH": path}
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    TRAIN_DRIVER,
                    str(src),
                    str(model_dir),
                    str(args.iterations),
                    args.stages,
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            if proc.returncode != 0:
                raise SystemExit(f"training failed ({label}):\n{proc.stderr[-3000:]}")
            rates = json.loads(proc.stdout.split("RATES ")[-1])
            results.setdefault(label, []).append(rates)
            print(rep, label, rates, flush=True)
            shutil.rmtree(model_dir, ignore_errors=True)
    rows = []
    stages = sorted({s for runs in results.values() for r in runs for s in r})
    for stage in stages:
        base = None
        for label, _ in variants:
            values = [r[stage] for r in results[label] if stage in r]
            if not values:
                continue
            rate = statistics.median(values)
            base = base or rate
            rows.append(
                {
                    "stage": stage,
                    "variant": label,
                    "it_per_s": round(rate, 3),
                    "ratio_to_first": round(rate / base, 2),
                    "runs": len(values),
                }
            )
            print(rows[-1], flush=True)
    return {"meta": _meta(args), "rows": rows, "raw": results}


def autotune_table(args: argparse.Namespace) -> dict:
    """The autotuned slices per call of each network for 256 x 256 slices, cached under -o."""
    import torch

    from skelem.inference import autotune
    from skelem.inference.backends import prepare_network
    from skelem.models.artifact import load_artifact

    torch.set_num_threads(1)
    os.environ["SKELEM_CACHE_DIR"] = str(Path(args.output) / "autotune_cache")
    artifact = load_artifact(args.model)
    rows = []
    for backend in args.backends:
        for name in ("skeleton", "refiner"):
            net = prepare_network(artifact.load_network(name, "cpu"), backend)
            device = torch.device("cpu")
            best = autotune.tuned_slices_per_call(net, (256, 256), device, limit=8)
            table = json.loads(autotune.cache_path().read_text())
            entry = table[autotune.tune_key(net, (256, 256), device)]
            rows.append(
                {
                    "network": name,
                    "backend": backend,
                    "slice": "256x256",
                    "chosen_slices_per_call": best,
                    "seconds_per_slice": entry["seconds_per_slice"],
                }
            )
            print(rows[-1], flush=True)
    return {"meta": _meta(args), "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["levers", "restore", "train", "autotune"])
    parser.add_argument("-o", "--output", default="bench-out/speed")
    parser.add_argument("--model", default=str(PRETRAINED))
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="levers: also torch.compile")
    parser.add_argument("--base-src", default=None, help="src/ of the old commit's worktree")
    parser.add_argument("--methods", nargs="+", default=["skeleton", "skelem"])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="restore: Dask workers (1: as the old commit's one process)",
    )
    parser.add_argument(
        "--allocator",
        nargs="*",
        default=[],
        help="restore: glibc tunables, e.g. MALLOC_ARENA_MAX=2",
    )
    parser.add_argument(
        "--crop", type=int, default=None, help="restore: only the first CROP x CROP voxels in YX"
    )
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--stages", default="skeleton,refiner,alignment")
    args = parser.parse_args()
    args.reps = args.reps or {"levers": 7, "restore": 2, "train": 2, "autotune": 1}[args.part]
    parts = {"levers": levers, "restore": restore, "train": train, "autotune": autotune_table}
    result = parts[args.part](args)
    _save(Path(args.output), args.part, result)
    print(json.dumps(result["rows"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
