"""Train the pretrained EM models shipped in the package (``skelem/pretrained_models``).

Data (``../shared/data``, Janelia FlyEM *Drosophila* medulla, isotropic 10 nm FIB-SEM, CC-BY;
Takemura et al. 2015): ``fibsem_medulla_t1`` (all of it, 250^3) and the half of
``fibsem_medulla_t2`` the headline benchmark never scores (Y 0-124). Each of the three
250 x 125 x 250 pieces (t1 Y 0-124, t1 Y 125-249, t2 Y 0-124) is degraded on its own (every s-th
Z slice, slice profile none) and the three acquisitions are stacked along Z into one training
volume (training pairs come from XY slices, so they never straddle two pieces; the cross-plane
alignment sub-volumes rarely do).

With ``--pairs z`` (the default since 2026-12-07) the skeleton, refiner and peer learn from true Z
pairs instead of XY pairs: the XZ and YZ planes of the *isotropic* t1 and t2 Y 0-124 (the same
data, before degradation) degraded along Z (``train_model(references=...)``;
``benchmarks/probes/skeleton_axial_pairs.py`` measured +0.05 to +0.18 dB for this on t2's
tuning half). ``--pairs xy`` is the previous recipe. The alignment stage learns from the stacked
acquisitions in both.

With ``--context K`` (default 2 since 2026-12-07; Z pairs only) the skeleton also sees the K
neighbouring XZ (YZ) slices on each side of every slice (``skeleton.context``, a 2.5-D input;
``benchmarks/probes/skeleton_context.py``).

The model trains with the default configuration's networks and a long budget
(``--iterations`` skeleton and refiner steps, a tenth of them for the alignment), in
``bench-out/pretrained/fibsem_x<s>``: running the same command again resumes an interrupted
run. When all stages are trained, the slim model (no checkpoints) is copied into
``src/skelem/pretrained_models/fibsem_x<s>`` with a ``PROVENANCE.md`` (data, command, budget,
training seconds, sha256 of every weights file).

Usage: ``.venv/bin/python benchmarks/train_pretrained.py --factor 8 --iterations 6000``
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from skelem.config.models import ExperimentConfig, build_config
from skelem.evaluation.benchmark import simulate_acquisition
from skelem.io import Volume, open_volume

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PACKAGE_DIR = REPO / "src" / "skelem" / "pretrained_models"


def training_volume(factor: int) -> Volume:
    """The three simulated acquisitions stacked along Z, uint8, voxel size in micrometres."""
    t1 = np.asarray(open_volume(DATA / "fibsem_medulla_t1" / "raw.tif").data)
    t2 = np.asarray(open_volume(DATA / "fibsem_medulla_t2" / "raw.tif").data)
    pieces = [t1[:, :125], t1[:, 125:250], t2[:, :125]]
    acquired = np.concatenate([simulate_acquisition(p, factor)[0] for p in pieces], axis=0)
    return Volume(
        np.ascontiguousarray(acquired),
        (0.01 * factor, 0.01, 0.01),
        "micrometer",
        f"fibsem_medulla_t1 + fibsem_medulla_t2 Y 0-124, x{factor} simulated, stacked along Z",
    )


def references() -> list[Volume]:
    """The isotropic pieces of the training data (t1 whole, t2 Y 0-124), for true Z pairs."""
    t1 = np.asarray(open_volume(DATA / "fibsem_medulla_t1" / "raw.tif").data)
    t2 = np.asarray(open_volume(DATA / "fibsem_medulla_t2" / "raw.tif").data)
    voxel = (0.01, 0.01, 0.01)
    return [
        Volume(t1, voxel, "micrometer", "fibsem_medulla_t1 (isotropic)"),
        Volume(
            np.ascontiguousarray(t2[:, :125]),
            voxel,
            "micrometer",
            "fibsem_medulla_t2 Y 0-124 (isotropic)",
        ),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--factor", type=int, required=True)
    ap.add_argument("--iterations", type=int, default=6000)
    ap.add_argument("-o", "--output", default="bench-out/pretrained")
    ap.add_argument(
        "--pairs",
        choices=("z", "xy"),
        default="z",
        help="true Z pairs of the isotropic data (default) or the volume's XY pairs",
    )
    ap.add_argument(
        "--context",
        type=int,
        default=2,
        help="neighbouring slices on each side in the skeleton's input (with --pairs z)",
    )
    ap.add_argument(
        "--no-install",
        action="store_true",
        help="train only; do not copy the model into the package",
    )
    args = ap.parse_args()
    from skelem.cli.progress import TqdmProgress
    from skelem.models.artifact import file_sha256
    from skelem.training.pipeline import train_model

    if not (DATA / "fibsem_medulla_t1" / "raw.tif").exists():
        print(f"real data not found under {DATA}", file=sys.stderr)
        return 2
    factor = args.factor
    volume = training_volume(factor)
    base = ExperimentConfig().model_dump()  # the default networks and training settings
    base["degradation"]["factor"] = factor
    base["skeleton"]["context"] = args.context if args.pairs == "z" else 0
    base["skeleton_training"].update(iterations=args.iterations, checkpoint_every=250)
    base["refiner_training"].update(iterations=args.iterations, checkpoint_every=250)
    base["alignment_training"].update(iterations=max(50, args.iterations // 10))
    cfg = build_config(base)
    model_dir = Path(args.output) / f"fibsem_x{factor}"
    started = time.time()
    with TqdmProgress() as progress:
        refs = references() if args.pairs == "z" else []
        artifact = train_model(volume, model_dir, cfg, progress=progress, references=refs)
    print(f"trained in {time.time() - started:.0f} s (this invocation)")
    if args.no_install:
        return 0
    target = PACKAGE_DIR / model_dir.name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(model_dir, target, ignore=shutil.ignore_patterns("checkpoints"))
    weights = sorted(target.glob("*.safetensors"))
    seconds = artifact.provenance.get("training_seconds", {})
    lines = [
        f"# Pretrained SkelEM model, FIB-SEM x{factor}",
        "",
        f"- Data: {volume.source} (shape {list(volume.shape)}, uint8, lateral voxel 10 nm).",
        "  Janelia FlyEM *Drosophila* medulla FIB-SEM, CC-BY (Takemura et al. 2015, PNAS); the",
        "  headline benchmark volume (fibsem_medulla_t2 Y 125-249) is not in it.",
        f"- Command: `.venv/bin/python benchmarks/train_pretrained.py --factor {factor} "
        f"--iterations {args.iterations} --pairs {args.pairs} --context "
        f"{cfg.skeleton.context}` (resumable: rerun the same "
        "command).",
        "- Pairs: "
        + (
            "true Z pairs (XZ and YZ planes of the isotropic t1 and t2 Y 0-124, degraded along "
            "Z) for the skeleton and refiner; the alignment on the stacked acquisitions."
            if args.pairs == "z"
            else "XY pairs of the stacked acquisitions (self-supervised)."
        ),
        f"- Skeleton input: the slice and {cfg.skeleton.context} neighbouring slices on each "
        "side (skeleton.context).",
        f"- Budget: skeleton {cfg.skeleton_training.iterations}, refiner "
        f"{cfg.refiner_training.iterations}, alignment {cfg.alignment_training.iterations} "
        "iterations; networks as the default configuration but for the skeleton's input "
        "(config.json).",
        f"- Training seconds: {json.dumps(seconds)} (2-core CPU, {time.strftime('%Y-%m-%d')}).",
        "- sha256 of the weights:",
        *[f"  - `{w.name}`: `{file_sha256(w)}`" for w in weights],
        "",
    ]
    (target / "PROVENANCE.md").write_text("\n".join(lines))
    print(f"installed into {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
