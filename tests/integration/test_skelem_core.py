"""SkelEM's core claims: data consistency, the few-step truncated sampler, seeded noise, samples,
the pure-diffusion peer and the residual-prior ablation."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from skelem.config.models import DiffusionConfig, NetworkConfig
from skelem.diffusion.schedule import truncated_timesteps
from skelem.inference.engine import SliceEngine
from skelem.inference.methods import build_method
from skelem.inference.restore import RestoreOptions, restore_volume
from skelem.io import Volume
from skelem.models.device import torch_threads
from skelem.models.factory import build_refiner, build_skeleton

from .helpers import FACTOR, TrainedModel, measured

CPU = torch.device("cpu")


def _randomised(model: torch.nn.Module, seed: int, scale: float = 0.2) -> torch.nn.Module:
    """Perturb every parameter (the zero-initialised heads and modulations included)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    return model.eval()


@pytest.fixture(scope="module")
def random_networks() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)  # the initial weights, whatever ran before (imports, other tests)
    skeleton = _randomised(build_skeleton(NetworkConfig(channels=8, depth=2)), seed=1)
    refiner = _randomised(build_refiner(NetworkConfig(channels=4, depth=2)), seed=2)
    return skeleton, refiner


def _engine(networks, **kwargs: object) -> SliceEngine:
    skeleton, refiner = networks
    return SliceEngine(
        method="skelem", device=CPU, multiple=4, skeleton=skeleton, refiner=refiner, **kwargs
    )


@pytest.fixture(scope="module")
def small_volume(trained_model: TrainedModel) -> Volume:
    """A 12 x 32 x 48 crop of the session phantom (restores to 45 x 32 x 48)."""
    v = trained_model.phantom.volume
    return Volume(
        np.ascontiguousarray(v.data[:, 8:40, 4:52]), voxel_size=v.voxel_size, source="crop"
    )


def _skelem(**kwargs: object) -> RestoreOptions:
    return RestoreOptions(method="skelem", device="cpu", **kwargs)


# ------------------------------------------------------------------------------------ 2a


@pytest.mark.parametrize("factor", [2, 3, 4, 8])
@pytest.mark.parametrize(("first_row", "residual_scale"), [(5, 1.0), (13, 1.0), (13, 0.05)])
def test_measured_rows_are_reproduced_exactly(
    random_networks, factor: int, first_row: int, residual_scale: float
) -> None:
    """Random inputs, random weights, a block starting at global row ``first_row``, with or
    without a residual scale: every measured row of the output equals the input; without data
    consistency not."""
    rng = np.random.default_rng(factor * 100 + first_row)
    slices = rng.random((5, 37, 30), dtype=np.float32)  # H, W not multiples of the U-Net's 4
    rows = measured(37, factor, first_row)
    assert rows.sum() >= 4 and not rows[0]

    def run(consistency: bool) -> np.ndarray:
        engine = _engine(
            random_networks, use_consistency=consistency, residual_scale=residual_scale
        )
        return engine.restore(
            slices, first_row, factor, "xz", np.arange(20, 25), col_origin=7, seed=3
        )

    out = run(True)
    assert out.shape == slices.shape and np.isfinite(out).all()
    assert np.abs(out[:, rows] - slices[:, rows]).max() < 1e-5
    # missing rows are restored, not copied from the (random) input
    assert np.abs(out[:, ~rows] - slices[:, ~rows]).max() > 1e-2
    free = run(False)
    assert np.abs(free[:, rows] - slices[:, rows]).max() > 1e-3, (
        "the consistency switch has no effect"
    )


@pytest.mark.parametrize("eta", [0.5, 1.0])
def test_stochastic_sampling_keeps_measured_rows_and_draws_new_detail(random_networks, eta):
    """eta > 0: every move adds fresh coordinate-keyed noise; measured rows stay exact, the rows
    between differ from deterministic sampling and between seeds, and a seed repeats exactly."""
    rng = np.random.default_rng(7)
    slices = rng.random((3, 33, 24), dtype=np.float32)
    rows = measured(33, 4, 0)

    def run(eta_value: float, seed: int) -> np.ndarray:
        engine = _engine(random_networks, eta=eta_value, t0=400, steps=4)
        return engine.restore(slices, 0, 4, "yz", np.arange(3), col_origin=0, seed=seed)

    out, again, other, ddim = run(eta, 1), run(eta, 1), run(eta, 2), run(0.0, 1)
    assert np.abs(out[:, rows] - slices[:, rows]).max() < 1e-5
    np.testing.assert_array_equal(out, again)
    assert np.abs(out[:, ~rows] - ddim[:, ~rows]).max() > 1e-3
    assert np.abs(out[:, ~rows] - other[:, ~rows]).max() > 1e-3


def test_restore_volume_reproduces_the_acquired_slices(
    trained_model: TrainedModel, small_volume: Volume
) -> None:
    artifact = trained_model.artifact
    acquired = artifact.normalizer.normalize(small_volume.read())
    out = restore_volume(small_volume, artifact, options=_skelem())
    assert out.shape == (45, 32, 48)
    assert np.abs(out[::FACTOR] - acquired).max() < 1e-5
    free = restore_volume(small_volume, artifact, options=_skelem(use_consistency=False))
    assert np.abs(free[::FACTOR] - acquired).max() > 1e-3


# ------------------------------------------------------------------------------------ 2b


def test_default_sampler_takes_the_pinned_steps(trained_model: TrainedModel) -> None:
    """Default: 2 moves from t0 = 400 (benchmarks/RESULTS.md, refiner levers: 2 steps from 400
    keep PSNR within 0.1 dB of 5 steps from 200 with more texture, at under half the cost)."""
    expected = [400, 200, 0]
    assert truncated_timesteps(400, 2) == expected
    assert truncated_timesteps(200, 5) == [200, 160, 120, 80, 40, 0]
    defaults = DiffusionConfig()
    assert (defaults.t0, defaults.steps) == (400, 2)
    assert trained_model.artifact.config.diffusion == defaults

    restorer = build_method(trained_model.artifact, FACTOR, _skelem(batch_size=4))
    engine = restorer.engine
    assert engine.timesteps == expected
    assert restorer.describe()["timesteps"] == expected

    calls: list[torch.Tensor] = []

    def record(_module, args, _output) -> None:
        calls.append(args[1].detach().clone())

    handle = engine.refiner.register_forward_hook(record)
    try:
        slices = np.random.default_rng(0).random((10, 21, 16), dtype=np.float32)
        engine.restore(slices, 0, FACTOR, "yz", np.arange(10), 0)
    finally:
        handle.remove()
    batches = [4, 4, 2]  # 10 slices in batches of 4
    moves = len(expected) - 1
    assert len(calls) == moves * len(batches)
    for b, size in enumerate(batches):
        ts = calls[moves * b : moves * b + moves]
        assert [tuple(t.shape) for t in ts] == [(size,)] * moves
        assert [int(t[0]) for t in ts] == expected[:-1]
        assert all(bool((t == t[0]).all()) for t in ts)


# ------------------------------------------------------------------------------------ 2c


def test_seed_controls_the_refiner_noise(trained_model: TrainedModel, small_volume: Volume) -> None:
    """Same seed, same output (bit for bit); another seed changes only the missing rows."""
    artifact = trained_model.artifact
    first = restore_volume(small_volume, artifact, options=_skelem(seed=0))
    again = restore_volume(small_volume, artifact, options=_skelem(seed=0))
    other = restore_volume(small_volume, artifact, options=_skelem(seed=1))
    np.testing.assert_array_equal(first, again)
    rows = measured(first.shape[0])
    assert np.abs(other[~rows] - first[~rows]).max() > 1e-4
    assert np.abs(other[rows] - first[rows]).max() < 1e-5


# ------------------------------------------------------------------------------------ 2d


def test_samples_give_zero_spread_on_measured_rows_only(
    trained_model: TrainedModel, small_volume: Volume
) -> None:
    mean, std = restore_volume(
        small_volume, trained_model.artifact, options=_skelem(samples=3), return_std=True
    )
    assert mean.shape == std.shape == (45, 32, 48)
    rows = measured(mean.shape[0])
    assert float(std[rows].max()) < 1e-6
    assert float(std[~rows].max()) > 1e-4
    acquired = trained_model.artifact.normalizer.normalize(small_volume.read())
    assert np.abs(mean[rows] - acquired).max() < 1e-5
    # the mean of 3 samples is not a single sample
    single = restore_volume(small_volume, trained_model.artifact, options=_skelem(seed=0))
    assert np.abs(mean[~rows] - single[~rows]).max() > 1e-5


# ------------------------------------------------------------------------------------ 2e


def test_pure_diffusion_peer_runs_with_three_steps(
    trained_model: TrainedModel, small_volume: Volume
) -> None:
    options = RestoreOptions(method="diffusion", steps=3, device="cpu")
    restorer = build_method(trained_model.artifact, FACTOR, options)
    assert restorer.engine.timesteps == truncated_timesteps(1000, 3) == [1000, 667, 333, 0]
    out = restore_volume(small_volume, trained_model.artifact, options=options)
    assert out.shape == (45, 32, 48) and out.dtype == np.float32 and np.isfinite(out).all()


def test_no_prior_ablation_changes_the_output(
    trained_model: TrainedModel, small_volume: Volume
) -> None:
    artifact = trained_model.artifact
    with_prior = restore_volume(small_volume, artifact, options=_skelem())
    without = restore_volume(small_volume, artifact, options=_skelem(use_prior=False))
    rows = measured(with_prior.shape[0])
    assert np.abs(without[~rows] - with_prior[~rows]).max() > 1e-3
    # the ablation keeps data consistency
    assert np.abs(without[rows] - with_prior[rows]).max() < 1e-5


@pytest.mark.parametrize("method", ["skeleton", "skelem"])
def test_single_plane_passes_fuse_to_the_default_output(
    trained_model: TrainedModel, small_volume: Volume, method: str
) -> None:
    """``planes="xz"`` and ``"yz"`` are the two passes the default output averages; they
    differ."""
    art = trained_model.artifact
    both, xz, yz = (
        restore_volume(
            small_volume, art, FACTOR, RestoreOptions(method=method, device="cpu", planes=p)
        )
        for p in ("both", "xz", "yz")
    )
    np.testing.assert_allclose(both, 0.5 * (xz + yz), atol=1e-5)
    assert np.abs(xz - yz).max() > 1e-3
    if method == "skelem":  # each pass alone keeps the measured slices
        rows = measured(both.shape[0])
        for single in (xz, yz):
            np.testing.assert_allclose(single[rows], both[rows], atol=1e-5)


def test_unknown_planes_are_refused(trained_model: TrainedModel) -> None:
    from skelem.errors import ConfigError

    with pytest.raises(ConfigError, match="planes"):
        build_method(trained_model.artifact, FACTOR, RestoreOptions(method="skeleton", planes="xy"))


def test_refiner_residual_scale_is_measured_and_saved(trained_model: TrainedModel) -> None:
    """The refiner diffuses the residual divided by its RMS on the training pairs, saved with the
    model."""
    from skelem.models.artifact import load_artifact
    from skelem.training.pipeline import _pair_sampler
    from skelem.training.stages import residual_rms

    art = trained_model.artifact
    assert art.config.diffusion.residual_scale is None  # "measure it"
    cfg = art.config
    sampler = _pair_sampler(
        trained_model.phantom.volume.data,
        cfg,
        art.normalizer,
        cfg.refiner_training.patch_size,
        cfg.refiner_training.seed,
    )
    expected = residual_rms(sampler, art.load_network("skeleton"), cfg, CPU)
    assert 1e-3 < art.residual_scale < 1.0
    assert art.residual_scale == pytest.approx(expected, rel=1e-6)
    assert load_artifact(art.directory).residual_scale == art.residual_scale


def test_residual_scale_changes_the_refined_output(random_networks) -> None:
    """The same refiner weights give another restoration at another scale (the scale is not
    ignored)."""
    slices = np.random.default_rng(0).random((3, 33, 24), dtype=np.float32)
    a, b = (
        _engine(random_networks, residual_scale=s).restore(
            slices, 0, 4, "xz", np.arange(3), 0, seed=1
        )
        for s in (1.0, 0.1)
    )
    assert np.abs(a - b).max() > 1e-3


def test_alignment_loss_is_the_weighted_sum_of_its_terms(trained_model: TrainedModel) -> None:
    """Each term of the alignment loss obeys its weight (0 switches it off); the anchor term
    trains."""
    from skelem.training import stages as st
    from skelem.training.pipeline import _cross_sampler, _pair_sampler

    art = trained_model.artifact
    volume = trained_model.phantom.volume
    tc = art.config.alignment_training
    sampler = _pair_sampler(volume.data, art.config, art.normalizer, tc.patch_size, tc.seed + 2)
    cross = _cross_sampler(volume, art, tc.patch_size // 2)
    assert cross is not None
    skeleton = art.load_network("skeleton")
    refiner = art.load_network("refiner")
    for p in refiner.parameters():
        p.requires_grad_(True)
    terms = ("hr_weight", "lr_weight", "agree_weight", "anchor_weight", "texture_weight")

    def loss(**weights: float) -> torch.Tensor:
        cfg = art.config.model_copy(
            update={
                "alignment": art.config.alignment.model_copy(
                    update={t: weights.get(t, 0.0) for t in terms}
                )
            }
        )
        with torch.random.fork_rng():
            return st.alignment_step(sampler, cross, skeleton, cfg, CPU, art.residual_scale)(
                refiner, 3
            )

    assert float(loss().detach()) == 0.0
    parts = [float(loss(**{t: 1.0}).detach()) for t in terms]
    assert all(v > 0 for v in parts)
    total = float(loss(**{t: 1.0 for t in terms}).detach())
    assert total == pytest.approx(sum(parts), rel=1e-3)  # float32 sums
    anchor = loss(anchor_weight=1.0)
    anchor.backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in refiner.parameters())


def test_pixel_budget_bounds_the_slices_per_call_without_changing_the_result(
    random_networks,
) -> None:
    """Each network's batch shrinks to the pixel budget scaled to its width (>= 1 slice): the
    8-channel skeleton gets twice, the 4-channel refiner four times the pixels of a 16-channel
    network; the restoration is the same."""
    slices = np.random.default_rng(3).random((7, 33, 24), dtype=np.float32)  # padded to 36 x 24
    wide = _engine(random_networks, batch_size=8, max_batch_pixels=10**9)
    tight = _engine(random_networks, batch_size=8, max_batch_pixels=36 * 24 + 5)
    assert wide.slices_per_call(33, 24) == 8
    assert tight.slices_per_call(33, 24) == 1  # reference width (16 channels)
    assert tight.slices_per_call(33, 24, tight.skeleton) == 2
    assert tight.slices_per_call(33, 24, tight.refiner) == 4
    assert tight.slices_per_call(330, 240, tight.refiner) == 1
    calls: dict[str, list[int]] = {"skeleton": [], "refiner": []}
    handles = [
        getattr(tight, name).register_forward_hook(
            lambda _m, args, _o, name=name: calls[name].append(args[0].shape[0])
        )
        for name in calls
    ]
    try:
        a = tight.restore(slices, 1, 4, "xz", np.arange(7), 0, seed=2)
    finally:
        for handle in handles:
            handle.remove()
    assert calls["refiner"] == [4] * 2 + [3] * 2  # 4 + 3 slices, 2 steps each
    assert calls["skeleton"] == [2, 2, 2, 1]
    b = wide.restore(slices, 1, 4, "xz", np.arange(7), 0, seed=2)
    # the batch size changes float rounding only (random networks reach values of ~1e3)
    assert np.abs(a - b).max() <= 1e-4 * max(1.0, np.abs(b).max())


def _end_fusion(
    engine: SliceEngine, block: np.ndarray, origin: tuple[int, int, int], factor: int, seed: int
) -> np.ndarray:
    """The default fusion, as ``Restorer.restore_block`` does it: two passes averaged at the
    end."""
    z0, y0, x0 = origin
    nz, ny, nx = block.shape
    xz = engine.restore(
        block.transpose(1, 0, 2), z0, factor, "xz", np.arange(y0, y0 + ny), x0, seed
    )
    yz = engine.restore(
        block.transpose(2, 0, 1), z0, factor, "yz", np.arange(x0, x0 + nx), y0, seed
    )
    return 0.5 * (xz.transpose(1, 0, 2) + yz.transpose(1, 2, 0))


def test_joint_sampling_keeps_measured_rows_and_equals_end_fusion_at_one_step(
    random_networks,
) -> None:
    """``fuse="steps"``: with one step there is nothing to fuse in between (same as the end fusion);
    with five the passes see each other and the result differs; measured rows stay exact."""
    block = np.random.default_rng(7).random((29, 10, 12), dtype=np.float32)  # Z, Y, X
    origin = (5, 3, 8)
    one = _engine(random_networks, steps=1, residual_scale=0.2)
    joint, end = (
        one.restore_joint(block, origin, 4, seed=1),
        _end_fusion(one, block, origin, 4, seed=1),
    )
    assert joint.shape == block.shape
    assert np.abs(joint - end).max() <= 1e-5 * max(1.0, np.abs(end).max())
    five = _engine(random_networks, residual_scale=0.2)
    joint, end = (
        five.restore_joint(block, origin, 4, seed=1),
        _end_fusion(five, block, origin, 4, seed=1),
    )
    rows = measured(29, 4, 5)
    assert np.abs(joint[rows] - block[rows]).max() <= 1e-5 * max(1.0, np.abs(joint).max())
    assert np.abs(joint - end).max() > 1e-3 * max(1.0, np.abs(end).max())


def test_streamed_block_fits_the_fixed_blocks_memory(trained_model: TrainedModel) -> None:
    """The streamed block is chosen per volume, within the read region (memory) of the fixed
    default block; joint sampling (~10 block arrays) within that of its eighth; --block wins."""
    from skelem.config.restore import RestoreOptions as Options
    from skelem.inference.job import RestoreJob
    from skelem.inference.planner import block_output_shape, largest_read_voxels, plan_blocks
    from skelem.inference.writers import (
        STREAM_BLOCK,
        STREAM_BLOCK_JOINT,
        output_chunks,
        stream_block_shape,
    )

    art = trained_model.artifact
    volume = Volume(np.zeros((200, 1500, 1500), np.uint8))  # never read: geometry only
    reads = {}
    for name, options in (("end", {}), ("joint", {"fuse": "steps"})):
        job = RestoreJob.prepare(volume, art, art.factor, Options(method="skelem", **options))
        block = stream_block_shape(job, workers=2)
        plan = plan_blocks(
            volume.shape,
            art.factor,
            block,
            job.method.halo,
            job.method.align,
            chunks=output_chunks(block),
        )
        budget = largest_read_voxels(
            STREAM_BLOCK_JOINT if name == "joint" else STREAM_BLOCK,
            art.factor,
            job.method.halo,
            job.method.align,
        )
        reads[name] = max(int(np.prod(block_output_shape(b, art.factor))) for b in plan)
        assert reads[name] <= budget
    assert reads["joint"] < reads["end"]
    given = RestoreJob.prepare(
        volume, art, art.factor, Options(method="skelem", block_shape=(32, 64, 64))
    )
    assert stream_block_shape(given, workers=2) == (32, 64, 64)


def test_detail_knob_interpolates_between_the_prior_and_the_sample(random_networks) -> None:
    """``detail`` = 0 is the skeleton plus the linearly propagated measured residual (no sampling),
    1 the full sample, and every setting in between lies on the line joining them; measured rows
    stay exact at every setting."""
    from skelem.data.interpolation import upsample

    rng = np.random.default_rng(3)
    slices = rng.random((2, 33, 24), dtype=np.float32)
    rows = measured(33, 4, 0)

    def run(detail: float, method: str = "skelem") -> np.ndarray:
        engine = _engine(random_networks, t0=400, steps=2, detail=detail)
        engine.method = method
        return engine.restore(slices, 0, 4, "xz", np.arange(2), col_origin=0, seed=5)

    skeleton, full, none, half = run(1.0, "skeleton"), run(1.0), run(0.0), run(0.5)
    for out in (full, none, half):
        assert np.abs(out[:, rows] - slices[:, rows]).max() < 1e-5
    residual = (slices - skeleton)[:, rows]
    expected = skeleton + upsample(residual, 4, axis=1, method="linear")
    np.testing.assert_allclose(none, expected, atol=1e-5)
    # float32 rounding of outputs up to ~1e3 (random networks): relative, not absolute
    np.testing.assert_allclose(half, 0.5 * (none + full), rtol=1e-6, atol=1e-5)
    assert np.abs(full - none)[:, ~rows].max() > 1e-3


@pytest.mark.parametrize(("factor", "modes"), [(4, 1), (8, 2), (3, 5)])
def test_slow_modes_leave_detail_orthogonal_to_them_and_measured_rows_exact(
    random_networks, factor: int, modes: int
) -> None:
    """``slow_modes`` removes the sampled detail's slowest sine modes between measured rows:
    what is left of its departure from the deterministic output has no component on them in any
    gap, the faster modes it had are kept, and the measured rows stay exact."""
    rng = np.random.default_rng(4)
    height = 4 * factor + 1
    slices = rng.random((2, height, 24), dtype=np.float32)
    rows = measured(height, factor, 0)

    def run(detail: float, slow: int) -> np.ndarray:
        engine = _engine(random_networks, t0=400, steps=2, detail=detail, slow_modes=slow)
        return engine.restore(slices, 0, factor, "xz", np.arange(2), col_origin=0, seed=5)

    base, full, filtered = run(0.0, 0), run(1.0, 0), run(1.0, modes)
    assert np.abs(filtered[:, rows] - slices[:, rows]).max() < 1e-5
    j = np.arange(1, factor)
    kept = min(modes, factor - 1)
    for a in range(0, height - 1, factor):
        before = (full - base)[:, a + 1 : a + factor]
        after = (filtered - base)[:, a + 1 : a + factor]
        for m in range(1, factor):
            wave = np.sin(np.pi * m * j / factor)[None, :, None]
            size = np.abs((before * wave).sum(axis=1)).max()
            left = np.abs((after * wave).sum(axis=1)).max()
            if m <= kept:
                assert left < 1e-4 * max(size, 1.0) and size > 1e-3
            else:
                np.testing.assert_allclose(left, size, rtol=1e-3, atol=1e-5)


def test_xz_and_yz_passes_start_from_one_noise_volume(random_networks) -> None:
    """The start noise is keyed by the voxel: an XZ slice and a YZ slice draw the same values
    along the Z line where they cross, and a tile's noise does not depend on its origin."""
    engine = _engine(random_networks)
    shape = (1, 1, 12, 10)
    xz, _ = engine._noise(shape, 4, "xz", np.array([7]), 20, seed=3)  # y = 7, x = 20..29
    yz, _ = engine._noise(shape, 4, "yz", np.array([23]), 0, seed=3)  # x = 23, y = 0..9
    torch.testing.assert_close(xz[0, 0, :, 3], yz[0, 0, :, 7])  # voxel column (z, 7, 23)
    assert float((xz[0, 0, :, 2] - yz[0, 0, :, 7]).abs().max()) > 0.1
    shifted, _ = engine._noise((1, 1, 10, 10), 6, "xz", np.array([7]), 22, seed=3)
    torch.testing.assert_close(shifted[0, 0, :, :8], xz[0, 0, 2:, 2:])


@pytest.mark.parametrize("method", ["skeleton", "skelem"])
def test_passes_side_by_side_on_two_threads_equal_one_thread(
    trained_model: TrainedModel, small_volume: Volume, method: str, monkeypatch
) -> None:
    """With 2 torch threads the XZ and YZ passes run at once, one thread each: the output is the
    1-thread output bit for bit, and the passes ran on two threads."""
    options = RestoreOptions(method=method, device="cpu")
    one = restore_volume(small_volume, trained_model.artifact, FACTOR, options)
    threads: dict[str, set[tuple[int, int]]] = {}
    original = SliceEngine.restore

    def recording(self, slices, first_row, factor, plane, *args, **kwargs):
        threads.setdefault(plane, set()).add((threading.get_ident(), torch.get_num_threads()))
        return original(self, slices, first_row, factor, plane, *args, **kwargs)

    monkeypatch.setattr(SliceEngine, "restore", recording)
    with torch_threads(2):
        two = restore_volume(small_volume, trained_model.artifact, FACTOR, options)
        assert torch.get_num_threads() == 2  # given back after the passes
    np.testing.assert_array_equal(two, one)
    (xz,), (yz,) = threads["xz"], threads["yz"]
    assert xz[0] != yz[0], "the two passes ran one after the other on one thread"
    assert xz[1] == yz[1] == 1


@pytest.mark.parametrize("method", ["skeleton", "skelem"])
def test_a_block_holds_one_output_array_with_the_bits_of_two_passes(
    trained_model: TrainedModel, small_volume: Volume, method: str
) -> None:
    """The passes interpolate their slices batch by batch and add into one output array: the
    bits of the interpolated block restored pass by pass and averaged, signed zeros included,
    with the numpy memory of the block under two output arrays (measured 1.6x; it was 3.1x with
    an interpolated copy and one array per pass)."""
    import tracemalloc

    from skelem.data.interpolation import upsample

    options = RestoreOptions(method=method, batch_size=2)  # calls far smaller than the block
    restorer = build_method(trained_model.artifact, FACTOR, options)
    block = small_volume.data.astype(np.float32) / 255.0
    origin = (FACTOR * 3, 5, 7)
    engine, (z0, y0, x0) = restorer.engine, origin
    _, ny, nx = block.shape
    interp = upsample(block, FACTOR, axis=0, method="cubic")
    seed = restorer.options.seed
    xz = engine.restore(
        interp.transpose(1, 0, 2), z0, FACTOR, "xz", np.arange(y0, y0 + ny), x0, seed
    )
    yz = engine.restore(
        interp.transpose(2, 0, 1), z0, FACTOR, "yz", np.arange(x0, x0 + nx), y0, seed
    )
    expected = xz.transpose(1, 0, 2) + yz.transpose(1, 2, 0)
    expected *= 0.5
    tracemalloc.start()
    try:
        got = restorer.restore_block(block, origin)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))
    assert peak < 2 * expected.nbytes, (peak, expected.nbytes)


def test_joint_sampling_records_the_detail_it_keeps(trained_model: TrainedModel) -> None:
    """The joint sampler keeps all the sampled detail: its outputs say detail 1, not the
    model's default blend, which only the end fusion applies."""
    import copy

    art = copy.deepcopy(trained_model.artifact)
    art.config.diffusion.detail, art.config.diffusion.slow_modes = 0.6, 1
    end = build_method(art, FACTOR, _skelem()).describe()
    joint = build_method(art, FACTOR, _skelem(fuse="steps")).describe()
    assert joint["fuse"] == "steps" and joint["detail"] == 1.0
    assert "slow_modes" not in joint
    assert end["detail"] == 0.6 and end["slow_modes"] == 1
