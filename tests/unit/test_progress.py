"""The CLI's progress bars: one per task, all closed when the work ends, however it ends."""

from __future__ import annotations

import pytest

from skelem.cli.progress import TqdmProgress
from skelem.events import ProgressEvent


def test_context_closes_the_open_bars_even_when_the_work_fails(capsys) -> None:
    with pytest.raises(RuntimeError, match="stopped"):
        with TqdmProgress() as progress:
            progress(ProgressEvent("train-skeleton", 3, 10, {"loss": 0.5}))
            progress(ProgressEvent("restore-xz", 1, 4))
            bars = dict(progress._bars)
            assert set(bars) == {"train-skeleton", "restore-xz"}
            assert not any(bar.disable for bar in bars.values())
            raise RuntimeError("stopped")
    assert progress._bars == {}
    assert all(bar.disable for bar in bars.values())  # tqdm's mark of a closed bar
    assert "3/10" in capsys.readouterr().err


def test_a_finished_task_closes_its_own_bar_and_quiet_shows_nothing(capsys) -> None:
    with TqdmProgress() as progress:
        progress(ProgressEvent("blocks", 2, 2))
        assert progress._bars == {}
    with TqdmProgress(enabled=False) as quiet:
        quiet(ProgressEvent("blocks", 1, 2))
        assert quiet._bars == {}
    assert capsys.readouterr().err.count("2/2") >= 1
