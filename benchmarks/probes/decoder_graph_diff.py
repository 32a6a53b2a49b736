"""How far the transposed-convolution decoders move a restore from the plain graph's.

Restores the t2 sample region of the demo (``fibsem_medulla_t2`` z all, y 125-249, x 45-204,
simulated x F) with the shipped pretrained model, once with ``UNet2D._decode`` as shipped and
once with the plain ``conv(cat(up(h), skip))`` graph, and prints the largest and mean absolute
difference of the float outputs (intensity units) and the share of voxels whose rounded value
differs.

Usage: ``.venv/bin/python benchmarks/probes/decoder_graph_diff.py [--factor 4]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tifffile
import torch

from skelem.evaluation.benchmark import simulate_acquisition
from skelem.inference.restore import RestoreOptions, restore_volume
from skelem.io import Volume
from skelem.models import unet
from skelem.models.artifact import load_artifact
from skelem.models.pretrained import pretrained_model_dir

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "fibsem_medulla_t2" / "raw.tif"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=int, default=4)
    args = parser.parse_args()
    raw = tifffile.imread(DATA)[:, 125:250, 45:205]
    acquired, _ = simulate_acquisition(raw, args.factor)
    vol = Volume(acquired, (0.01 * args.factor, 0.01, 0.01), "micrometer", "t2")
    artifact = load_artifact(pretrained_model_dir(args.factor))
    methods = ("skeleton", "skelem")

    def restore_all() -> dict[str, np.ndarray]:
        return {
            m: restore_volume(
                vol, artifact, args.factor, RestoreOptions(method=m), input_units=True
            )
            for m in methods
        }

    shipped = restore_all()
    unet.UNet2D._decode = lambda self, block, h, skip, emb: block(
        torch.cat([self._up(h), skip], dim=1), emb
    )
    plain = restore_all()
    for m in methods:
        diff = np.abs(shipped[m] - plain[m])
        rounded = float(np.mean(np.round(shipped[m]) != np.round(plain[m])))
        print(
            f"x{args.factor} {m}: max |diff| {diff.max():.2e}, mean {diff.mean():.2e} "
            f"(intensity units); rounded values differ at {rounded:.2e} of the voxels"
        )


if __name__ == "__main__":
    main()
