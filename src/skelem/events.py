"""Progress events: library code emits them, the CLI turns them into progress bars.

Tests record them with :class:`EventRecorder`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a long task.

    Parameters
    ----------
    task : str
        Short name of the task, e.g. ``"train-skeleton"``, ``"restore-xz"``, ``"blocks"``.
    step : int
        Steps done so far (1-based after the first step finishes).
    total : int
        Total number of steps of the task (0 when unknown).
    metrics : dict
        Optional scalar values to show, e.g. ``{"loss": 0.03}``.
    """

    task: str
    step: int
    total: int
    metrics: dict[str, float] = field(default_factory=dict)


ProgressCallback = Callable[[ProgressEvent], None]


def no_progress(event: ProgressEvent) -> None:  # noqa: ARG001 - default sink
    """A progress callback that ignores every event.

    Parameters
    ----------
    event : ProgressEvent
        The event, discarded.
    """


class EventRecorder:
    """A callback that keeps every event it receives (for tests).

    Attributes
    ----------
    events : list of ProgressEvent
        Every event received so far, in order.
    """

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def __call__(self, event: ProgressEvent) -> None:
        """Record ``event``.

        Parameters
        ----------
        event : ProgressEvent
            The event to append to :attr:`events`.
        """
        self.events.append(event)
