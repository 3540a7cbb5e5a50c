"""The liveness file of a worker (a bootstep on its event loop) and of beat (on each tick)."""

from __future__ import annotations

from typing import Any

from celery import bootsteps
from redbeat import RedBeatScheduler

from shared.liveness import Heartbeat
from shared.settings import get_settings


class LivenessStep(bootsteps.StartStopStep):
    """Touches LIVENESS_FILE from the worker's main event loop (the hub's timer), so a stopped
    or stuck main process stops touching it; a thread of its own would go on regardless."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.heart = Heartbeat.from_settings(get_settings())
        self.entry: Any = None

    def start(self, worker: Any) -> None:
        if self.heart is not None:
            self.heart.beat()
            self.entry = worker.timer.call_repeatedly(self.heart.every, self.heart.beat)

    def stop(self, worker: Any) -> None:
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None


class LivenessRedBeatScheduler(RedBeatScheduler):  # type: ignore[misc]
    """RedBeat's scheduler that touches LIVENESS_FILE on every tick of beat's loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heart = Heartbeat.from_settings(get_settings())

    def tick(self, *args: Any, **kwargs: Any) -> Any:
        if self.heart is not None:
            self.heart.beat()
        return super().tick(*args, **kwargs)
