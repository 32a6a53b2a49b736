"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

torch.set_num_threads(2)


@pytest.fixture
def shared_data() -> Path:
    """The real FIB-SEM volumes in ``../shared/data``; skips the test when the folder is absent."""
    if not (SHARED_DATA / "fibsem_medulla_t1" / "raw.tif").exists():
        pytest.skip(f"real data not found at {SHARED_DATA} (clone the project beside ../shared)")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="session")
def _no_shipped_pretrained_models(tmp_path_factory: pytest.TempPathFactory):
    """Tests see no pretrained models (so ``restore`` without ``--model`` stays cubic) unless
    they point ``SKELEM_PRETRAINED_DIR`` somewhere themselves; subprocesses inherit it."""
    import os

    from skelem.models.pretrained import PRETRAINED_ENV

    empty = tmp_path_factory.mktemp("no-pretrained")
    old = os.environ.get(PRETRAINED_ENV)
    os.environ[PRETRAINED_ENV] = str(empty)
    yield empty
    if old is None:
        os.environ.pop(PRETRAINED_ENV, None)
    else:
        os.environ[PRETRAINED_ENV] = old
