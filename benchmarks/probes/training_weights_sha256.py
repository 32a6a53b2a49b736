"""Train a tiny model (all stages) and print the sha256 of its weights and its residual scale.

Used to check that a refactor leaves training bit-identical: run before and after, compare.
Usage: `.venv/bin/python benchmarks/probes/training_weights_sha256.py [resume]` (`resume`:
interrupt every stage after a checkpoint and continue, which must give the same hashes).
"""
import hashlib
import json
import sys
import tempfile
from pathlib import Path

from skelem.config.models import build_config
from skelem.data.phantoms import em_phantom
from skelem.io import Volume
from skelem.models.device import torch_threads
from skelem.training.pipeline import train_model

truth, _ = em_phantom((24, 64, 64), seed=0)
vol = Volume(truth, voxel_size=(16.0, 4.0, 4.0), unit="nanometer", source="phantom")
STAGE = {"patch_size": 32, "seed": 0}
cfg = build_config({
    "degradation": {"factor": 4},
    "skeleton": {"channels": 8, "depth": 2},
    "refiner": {"channels": 4, "depth": 2},
    "diffusion_peer": {"channels": 4, "depth": 2},
    "skeleton_training": {**STAGE, "iterations": 20, "batch_size": 4, "checkpoint_every": 7},
    "refiner_training": {**STAGE, "iterations": 20, "batch_size": 4, "checkpoint_every": 7},
    "alignment_training": {**STAGE, "iterations": 6, "batch_size": 2, "checkpoint_every": 4},
    "device": "cpu",
})
out = {}
with torch_threads(1), tempfile.TemporaryDirectory() as d:
    md = Path(d) / "model"
    stages = ["skeleton", "refiner", "alignment", "diffusion_peer"]
    if "resume" in sys.argv:
        class Stop(Exception):
            pass
        seen = set()
        def prog(ev):
            if ev.task not in seen and ev.step == (5 if ev.task == "align-refiner" else 9):
                seen.add(ev.task)
                raise Stop
        for _ in range(8):
            try:
                train_model(vol, md, cfg, stages=stages, progress=prog)
                break
            except Stop:
                pass
    art = train_model(vol, md, cfg, stages=stages)
    for p in sorted(md.glob("*.safetensors")):
        out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    out["residual_scale"] = repr(art.residual_scale)
    out["files"] = sorted(str(p.relative_to(md)) for p in md.rglob("*"))
out["interrupted"] = sorted(seen) if "resume" in sys.argv else []
print(json.dumps(out, indent=1))
