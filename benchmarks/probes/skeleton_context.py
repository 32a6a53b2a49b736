"""Probe: a 2.5-D skeleton input (neighbouring slices as channels), trained on true Z pairs.

A restore's XZ slice at ``y`` has neighbours at ``y - 1`` and ``y + 1``, one lateral voxel away,
degraded along Z exactly like it. From a user's anisotropic volume the skeleton cannot learn to use
them: its training slices are XY planes, whose neighbours are ``factor`` voxels away (the geometry
differs from the restore's). From an *isotropic* volume (the pretrained models' data) the XZ and
YZ planes degraded along Z have neighbours of the restore's own geometry. Oblique structures
(a membrane crossing Z at an angle in Y) are visible in the neighbours; whether that is worth
anything to the network is what this probe measures.

Variants (same network, budget, seed and code, trained on all of t1 with Z pairs; the centre slice
is the first channel, so the residual connection and the target are the same as the package's):

- ``c0``: one channel (the package's skeleton, as ``skeleton_axial_pairs.py``'s ``z``);
- ``c1``: the slice and its two neighbours (3 channels);
- ``c2``: the slice and its four nearest neighbours (5 channels).

The neighbours' order is flipped at random in training (the network must not prefer a side). Each
skeleton restores zero-shot the central crop of a Y half of ``fibsem_medulla_t2`` (XZ and YZ passes
averaged, neighbours mirrored at the crop's edges, measured rows put back) and is scored against
its isotropic truth next to cubic interpolation.

Usage: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probes/skeleton_context.py --factor 8 \
-o bench-out/context/x8 [--variants c0 c1 c2] [--iterations 1500] [--half tuning]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crop_protocol import HALVES, crop_case  # noqa: E402
from skeleton_phase_input import score_row  # noqa: E402

from skelem.config.models import ExperimentConfig, build_config  # noqa: E402
from skelem.data.interpolation import upsample  # noqa: E402
from skelem.data.normalize import PercentileNormalizer  # noqa: E402
from skelem.data.pairs import PairSampler  # noqa: E402
from skelem.grid import neighbour_indices, neighbour_offsets  # noqa: E402
from skelem.io import open_volume  # noqa: E402
from skelem.metrics import evaluate_arrays  # noqa: E402
from skelem.models.unet import UNet2D, apply_padded  # noqa: E402
from skelem.seeds import numpy_rng  # noqa: E402
from skelem.training.loop import train_stage  # noqa: E402
from skelem.training.losses import SKELETON_LOSSES  # noqa: E402

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class ContextPairSampler(PairSampler):
    """Z pairs of a transposed isotropic volume with ``k`` neighbour planes per side.

    Windows are ``(rows, patch, channels)`` stacks; :meth:`sample` returns ``U`` of shape
    ``(B, 2 k + 1, P, P)`` and ``P`` of the centre plane, ``(B, 1, P, P)``. This is the probe's
    own sampling (a window's slice drawn over the whole stack, then kept ``k`` from its ends; its
    standard deviation over all channels); the package's ``PairSampler(context=k)``, built after
    this probe, draws the slice among those ``k`` from the ends and its std on the slice alone.
    """

    def __init__(self, *args, context: int = 0, **kwargs) -> None:
        self.k = int(context)
        super().__init__(*args, **kwargs)

    def _draw_window(self, rng: np.random.Generator):
        z, axis, r0, c0, fr, fc, _ = super()._draw_window(rng)
        k = self.k
        z = min(max(z, k), self.shape[0] - 1 - k)
        flipped = bool(rng.integers(0, 2)) if k else False
        return z, axis, r0, c0, fr, fc, flipped

    def _read_window(self, window) -> np.ndarray:
        z, axis, r0, c0, fr, fc, flipped = window
        read = super()._read_window
        offsets = neighbour_offsets(self.k, flipped)
        planes = [read((z + d, axis, r0, c0, fr, fc, False)) for d in offsets]
        return np.stack(planes, axis=-1)

    def sample(self, batch_size, rng=None, return_rows=False, phase=None):
        rng = self.rng if rng is None else rng
        if phase is None:
            phase = int(rng.integers(0, self.factor))
        size, channels = self.patch_size, 2 * self.k + 1
        u = np.empty((batch_size, channels, size, size), dtype=np.float32)
        p = np.empty((batch_size, 1, size, size), dtype=np.float32)
        for item in range(batch_size):
            stack = self._choose_window(rng, phase)
            p[item, 0] = self._target(stack, phase)[..., 0]
            u[item] = np.moveaxis(self._degraded(stack, phase), -1, 0)
        return u, p


def restore(net: UNet2D, acquired: np.ndarray, factor: int, norm, context: int) -> np.ndarray:
    """XZ and YZ passes over the cubic interpolant with neighbours, averaged; measured rows back."""
    u = norm.normalize(upsample(acquired.astype(np.float32), factor, axis=0, method="cubic"))
    out = np.zeros_like(u)
    with torch.no_grad():
        for axis in (1, 2):  # XZ slices (one per Y), YZ slices (one per X)
            slices = np.ascontiguousarray(np.moveaxis(u, axis, 0))  # (N, Z', L)
            x = torch.from_numpy(slices[neighbour_indices(len(slices), context)])
            pred = torch.cat([apply_padded(net, x[i : i + 16]) for i in range(0, len(x), 16)])
            out += np.moveaxis(pred[:, 0].numpy(), 0, axis)
    out /= 2
    out[::factor] = u[::factor]
    return norm.denormalize(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--variants", nargs="+", default=["c0", "c1", "c2"])
    ap.add_argument("--half", choices=sorted(HALVES), default="tuning")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    case = crop_case(DATA / "fibsem_medulla_t2" / "raw.tif", HALVES[args.half], args.factor, "t2")
    t1 = np.asarray(open_volume(DATA / "fibsem_medulla_t1" / "raw.tif").data)
    base = ExperimentConfig().model_dump()
    base["degradation"]["factor"] = args.factor
    base["skeleton_training"]["seed"] = args.seed
    base["skeleton_training"]["iterations"] = args.iterations
    cfg = build_config(base)
    tcfg = cfg.skeleton_training
    train_norm = PercentileNormalizer.fit(t1)
    test_norm = PercentileNormalizer.fit(case.volume.data)
    loss = SKELETON_LOSSES[cfg.skeleton_loss]
    acquired = case.eval_in.data
    cubic = upsample(acquired.astype(np.float32), args.factor, axis=0, method="cubic")
    cubic_psnr = float(evaluate_arrays(cubic, case.eval_gt, data_range=255.0, border=8)["psnr"])
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    results = {"cubic_psnr": cubic_psnr, "args": vars(args)}
    for variant in args.variants:
        context = int(variant[1:])
        parts = []
        for axes in ((1, 0, 2), (2, 0, 1)):  # XZ slices (Y, Z, X), YZ slices (X, Z, Y)
            s = ContextPairSampler(
                np.ascontiguousarray(t1.transpose(axes)),
                args.factor,
                patch_size=tcfg.patch_size,
                normalizer=train_norm,
                seed=tcfg.seed,
                context=context,
            )
            s.orientations = [1]  # rows = the original Z
            parts.append(s)
        share = tcfg.batch_size // len(parts)
        torch.manual_seed(tcfg.seed)
        net = UNet2D(
            2 * context + 1,
            1,
            channels=cfg.skeleton.channels,
            depth=cfg.skeleton.depth,
            residual_input=True,
        )

        def step_loss(model, step, parts=parts, share=share):
            rng0 = numpy_rng(tcfg.seed, step, 0)
            phase = int(rng0.integers(0, args.factor))
            batches = [
                s.sample(share, rng=numpy_rng(tcfg.seed, step, i), phase=phase)
                for i, s in enumerate(parts)
            ]
            u = torch.from_numpy(np.concatenate([b[0] for b in batches]))
            p = torch.from_numpy(np.concatenate([b[1] for b in batches]))
            return loss(model(u), p)

        t = time.perf_counter()
        ema = train_stage(f"skeleton-{variant}", net, step_loss, tcfg)
        train_s = time.perf_counter() - t
        pred = restore(ema, acquired, args.factor, test_norm, context)
        results[variant] = score_row(pred, case, cubic_psnr, train_s, variant)
        np.save(out / f"{variant}_seed{args.seed}.npy", pred.astype(np.float32))
        (out / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
