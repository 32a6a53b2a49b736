"""Turn :class:`~skelem.events.ProgressEvent` streams into tqdm progress bars."""

from __future__ import annotations

import sys

from skelem.events import ProgressEvent

_LABELS = {
    "train-skeleton": "training skeleton",
    "train-refiner": "training refiner",
    "train-diffusion-peer": "training diffusion peer",
    "align-refiner": "aligning refiner",
    "blocks": "restoring blocks",
}


class TqdmProgress:
    """A progress callback that keeps one tqdm bar per task (on stderr).

    Use it as a context manager (``with TqdmProgress() as progress:``) to close every open bar
    when the work ends, however it ends.

    Parameters
    ----------
    enabled : bool
        Show bars; when false (or there is no stderr) every event is ignored.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr is not None
        self._bars: dict[str, object] = {}

    def __call__(self, event: ProgressEvent) -> None:
        """Advance (opening it on first use) the bar of ``event.task``; close it when done.

        Parameters
        ----------
        event : ProgressEvent
            The step to show; its metrics become the bar's postfix.
        """
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self._bars.get(event.task)
        if bar is None:
            bar = tqdm(
                total=event.total or None,
                desc=_LABELS.get(event.task, event.task),
                unit="it" if event.task.startswith(("train", "align")) else "step",
                dynamic_ncols=True,
                leave=True,
                initial=max(event.step - 1, 0),
            )
            self._bars[event.task] = bar
        bar.n = event.step  # type: ignore[attr-defined]
        if event.metrics:
            bar.set_postfix({k: f"{v:.4g}" for k, v in event.metrics.items()}, refresh=False)  # type: ignore[attr-defined]
        bar.refresh()  # type: ignore[attr-defined]
        if event.total and event.step >= event.total:
            bar.close()  # type: ignore[attr-defined]
            del self._bars[event.task]

    def close(self) -> None:
        """Close every open bar."""
        for bar in self._bars.values():
            bar.close()  # type: ignore[attr-defined]
        self._bars.clear()

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
