"""A skeleton with neighbouring slices as input channels (``skeleton.context``, a 2.5-D input)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelem.config.models import NetworkConfig
from skelem.data.degradation import degrade
from skelem.data.pairs import PairSampler, ReferencePlanes, axial_pair_samplers
from skelem.data.phantoms import em_phantom
from skelem.export.network import SkeletonRestorer
from skelem.inference.engine import SliceEngine
from skelem.inference.methods import build_method
from skelem.inference.planner import plan_blocks
from skelem.inference.restore import RestoreOptions, restore_volume
from skelem.io import Volume
from skelem.models.context import neighbour_indices, with_neighbours
from skelem.models.factory import build_skeleton
from skelem.models.unet import UNet2D
from skelem.training.pipeline import train_model

from .helpers import FACTOR, Phantom, measured, tiny_config

CONTEXT = 2


def _options(method: str, **kwargs: object) -> RestoreOptions:
    return RestoreOptions(method=method, device="cpu", **kwargs)


def test_neighbours_are_mirrored_at_the_ends_of_the_stack() -> None:
    idx = neighbour_indices(5, 2)  # channel order: 0, -1, +1, -2, +2
    np.testing.assert_array_equal(idx[0], [0, 1, 1, 2, 2])
    np.testing.assert_array_equal(idx[2], [2, 1, 3, 0, 4])
    np.testing.assert_array_equal(idx[4], [4, 3, 3, 2, 2])
    np.testing.assert_array_equal(neighbour_indices(1, 2), [[0, 0, 0, 0, 0]])
    stack = torch.arange(5.0).view(5, 1, 1, 1).expand(5, 1, 2, 3)
    got = with_neighbours(stack, 2, 1, 3)
    assert got.shape == (2, 5, 2, 3)
    np.testing.assert_array_equal(got[:, :, 0, 0].numpy(), [[1, 0, 2, 1, 3], [2, 1, 3, 0, 4]])


def test_axial_pairs_carry_the_neighbouring_planes_one_voxel_apart() -> None:
    """On a volume that grows by 1 per Y slice, each neighbour channel of an XZ pair differs
    from the pair's own slice by its offset (either side first), the target by nothing."""
    rng = np.random.default_rng(0)
    base = rng.random((40, 1, 24)).astype(np.float32)
    volume = base + np.arange(24, dtype=np.float32)[None, :, None]  # (Z, Y, X)
    planes = ReferencePlanes.read(volume)
    xz = axial_pair_samplers(planes, 4, patch_size=16, seed=0, context=2)[0]
    u, p = xz.sample(6, rng=np.random.default_rng(1))
    assert u.shape == (6, 5, 16, 16) and p.shape == (6, 1, 16, 16)
    step = float(planes.normalizer.normalize(np.float32(1.0)) - planes.normalizer.normalize(0.0))
    for item in range(6):
        offsets = [float(np.mean(u[item, c] - u[item, 0])) / step for c in range(1, 5)]
        side = np.sign(offsets[1])  # +1 as ordered, -1 with the two sides swapped
        np.testing.assert_allclose(offsets, side * np.array([-1, 1, -2, 2]), atol=1e-4)
    # without context the same sampler gives one channel
    plain = PairSampler(
        np.ascontiguousarray(volume.transpose(1, 0, 2)), 4, patch_size=16, axes=(1,)
    )
    assert plain.sample(2, rng=np.random.default_rng(1))[0].shape == (2, 1, 16, 16)


def _random_skeleton(context: int) -> UNet2D:
    torch.manual_seed(0)
    net = build_skeleton(NetworkConfig(channels=4, depth=2, context=context))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=generator))
    return net.eval()


@pytest.mark.parametrize("context", [0, CONTEXT])
def test_the_engine_feeds_the_neighbouring_slices_across_its_batches(context) -> None:
    """A random skeleton: changing slice 6 of a pass changes the output of slices 6 - k .. 6 + k
    and no other, and calls of 2 slices equal calls of all 16 (neighbours cross the calls)."""
    rng = np.random.default_rng(0)
    slices = rng.random((16, 29, 20), dtype=np.float32)
    changed = slices.copy()
    changed[6] += 0.5
    net = _random_skeleton(context)

    def run(data: np.ndarray, batch: int) -> np.ndarray:
        engine = SliceEngine(
            method="skeleton",
            device=torch.device("cpu"),
            multiple=4,
            skeleton=net,
            batch_size=batch,
            max_batch_pixels=10**9,
        )
        return engine.restore(data, 0, FACTOR, "xz", np.arange(16), 0)

    base = run(slices, 16)
    np.testing.assert_allclose(run(slices, 2), base, rtol=0, atol=1e-5)
    moved = np.abs(run(changed, 2) - base).max(axis=(1, 2)) > 1e-6
    expected = np.zeros(16, bool)
    expected[6 - context : 7 + context] = True
    np.testing.assert_array_equal(moved, expected)


@pytest.fixture(scope="module")
def context_model(tmp_path_factory: pytest.TempPathFactory, phantom: Phantom):
    """A tiny model with a 2-neighbour skeleton trained on the phantom's true Z pairs."""
    config = tiny_config(
        skeleton={"context": CONTEXT},
        skeleton_training={"iterations": 20},
        refiner_training={"iterations": 8},
        alignment_training={"iterations": 2},
    )
    reference = Volume(phantom.truth, (4.0, 4.0, 4.0), "nanometer", "iso-reference")
    return train_model(
        phantom.volume,
        tmp_path_factory.mktemp("context") / "model",
        config,
        references=[reference],
    )


def test_a_context_model_trains_and_its_skeleton_takes_the_neighbours(context_model) -> None:
    net = context_model.load_network("skeleton")
    assert net.in_channels == 2 * CONTEXT + 1
    assert context_model.stages == ["skeleton", "refiner", "alignment"]
    assert context_model.provenance["skeleton_error_vs_cubic"] < 1.0


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("skeleton", {}),
        ("skeleton", {"tta": True}),
        ("skelem", {}),
        ("skelem", {"fuse": "steps"}),
        ("skelem", {"slow_modes": 1}),
    ],
)
def test_tiled_equals_untiled_and_measured_rows_stay(context_model, method, extra) -> None:
    """Blocks that start inside the volume in Y and X (so both passes' neighbours cross a
    block's edge) give the one-block result; SkelEM keeps the acquired slices."""
    side, block = (48, (24, 16, 16)) if method == "skeleton" else (96, (24, 32, 32))
    truth, _ = em_phantom((FACTOR * 7 + 1, side, side), seed=4)
    volume = Volume(degrade(truth, FACTOR, axis=0), (16.0, 4.0, 4.0), "nanometer", "wide")
    restorer = build_method(context_model, FACTOR, _options(method, **extra))
    plan = plan_blocks(volume.shape, FACTOR, block, restorer.halo, align=restorer.align)
    assert any(b.read[1].start > 0 for b in plan) and any(b.read[2].start > 0 for b in plan)
    whole = restore_volume(volume, context_model, options=_options(method, seed=3, **extra))
    tiled = restore_volume(
        volume, context_model, options=_options(method, seed=3, block_shape=block, **extra)
    )
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)
    if method == "skelem":
        acquired = context_model.normalizer.normalize(volume.read())
        rows = measured(whole.shape[0])
        np.testing.assert_allclose(whole[rows], acquired, rtol=0, atol=1e-5)


def test_the_exported_restorer_equals_the_skeleton_restore(context_model) -> None:
    truth, _ = em_phantom((FACTOR * 5 + 1, 24, 32), seed=2)
    volume = Volume(degrade(truth, FACTOR, axis=0), (16.0, 4.0, 4.0))
    net_cfg = context_model.config.skeleton
    restorer = SkeletonRestorer(
        FACTOR, channels=net_cfg.channels, depth=net_cfg.depth, context=net_cfg.context
    )
    restorer.skeleton.load_state_dict(context_model.load_network("skeleton").state_dict())
    restorer.eval()
    normalised = context_model.normalizer.normalize(volume.read()).astype(np.float32)
    with torch.no_grad():
        exported = restorer(torch.from_numpy(normalised)[None, None])[0, 0].numpy()
    restored = restore_volume(volume, context_model, options=_options("skeleton"))
    np.testing.assert_allclose(exported, restored, rtol=0, atol=1e-4)
