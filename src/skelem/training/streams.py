"""The named random streams of training, one key each (see :mod:`skelem.seeds`).

A stream is a generator over ``(seed, step, STREAM_*)``: it depends only on the stage's seed and
the step, so a run resumed from a checkpoint draws exactly what an uninterrupted run would. The
stream key comes last and is never 0: :class:`numpy.random.SeedSequence` pads short entropy with
zeros, so ``(seed, step)`` and ``(seed, step, 0)`` would be the same stream. Batches of pairs use
``(seed, step)`` itself (the sampler's stream, unchanged since the first release).
"""

from __future__ import annotations

STREAM_REFINER_NOISE = 1
"""Torch: the refiner's training timesteps and noise."""
STREAM_PEER_NOISE = 2
"""Torch: the pure-diffusion peer's training timesteps and noise."""
STREAM_ALIGNMENT_PATCHES = 3
"""NumPy: the alignment stage's XY patches and cross-plane sub-volumes."""
STREAM_ALIGNMENT_NOISE = 4
"""Torch: the alignment stage's sampler start noise (XY patches, then XZ and YZ slices)."""
STREAM_RESIDUAL_SCALE = 5
"""NumPy: the batches on which the refiner's residual scale is measured (``step`` = batch)."""
STREAM_TRAINING_STEP = 6
"""Torch: the global generator, reseeded before every step of the training loop."""
STREAM_SKELETON_CHECK = 8
"""NumPy: the pairs on which the trained skeleton is compared with cubic interpolation."""
STREAM_ALIGNMENT_ANCHOR = 7
"""Torch: the alignment's anchor (denoising) term, apart so that switching it off (weight 0)
leaves the other terms' noise unchanged."""
