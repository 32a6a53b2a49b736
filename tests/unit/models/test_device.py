"""Device names resolve to torch devices or fail with one sentence."""

from __future__ import annotations

import pytest
import torch

from skelem.errors import ConfigError
from skelem.models.device import resolve_device


def test_auto_gives_cuda_when_available_else_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device().type == expected


def test_cpu_ignores_case_and_spaces() -> None:
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("name", ["banana", "", "cuda:x", "gpu0"])
def test_invalid_names_raise_config_error(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_device(name)
    assert str(info.value).count(".") >= 1 and "\n" not in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_requested_without_cuda_raises() -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError):
        resolve_device("cuda:1")


def test_torch_threads_sets_and_restores_the_thread_count():
    import torch

    from skelem.models.device import torch_threads

    original = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        try:
            with torch_threads(1):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(original)
