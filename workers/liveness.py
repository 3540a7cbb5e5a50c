"""The liveness file of a worker (its event loop, its broker reconnection loop) and of beat."""

from __future__ import annotations

import functools
from typing import Any

from celery import bootsteps
from celery.worker.consumer import Consumer
from redbeat import RedBeatScheduler

from shared.liveness import Heartbeat
from shared.settings import get_settings


@functools.cache
def heart() -> Heartbeat | None:
    """This process's heartbeat (None: no LIVENESS_FILE)."""
    return Heartbeat.from_settings(get_settings())


def beat() -> None:
    found = heart()
    if found is not None:
        found.beat()


class LivenessStep(bootsteps.StartStopStep):
    """Touches LIVENESS_FILE from the worker's main event loop (the hub's timer), so a stopped
    or stuck main process stops touching it; a thread of its own would go on regardless."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.entry: Any = None

    def start(self, worker: Any) -> None:
        found = heart()
        if found is not None:
            found.beat()
            self.entry = worker.timer.call_repeatedly(found.every, found.beat)

    def stop(self, worker: Any) -> None:
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None


class LivenessConsumer(Consumer):  # type: ignore[misc]
    """The worker's consumer, also touching LIVENESS_FILE while it waits for the broker: the
    event loop (and so the timer above) stands still while Redis is down, and an outage is
    not a hang. Kombu calls the retry callback about every second from this same thread."""

    def ensure_connected(self, conn: Any) -> Any:
        ensure = conn.ensure_connection

        def ensure_with_heartbeat(*args: Any, callback: Any = None, **kwargs: Any) -> Any:
            def turn() -> None:
                beat()
                if callback is not None:
                    callback()

            return ensure(*args, callback=turn, **kwargs)

        conn.ensure_connection = ensure_with_heartbeat
        return super().ensure_connected(conn)


class LivenessRedBeatScheduler(RedBeatScheduler):  # type: ignore[misc]
    """RedBeat's scheduler that touches LIVENESS_FILE on every tick of beat's loop."""

    def tick(self, *args: Any, **kwargs: Any) -> Any:
        beat()
        return super().tick(*args, **kwargs)
