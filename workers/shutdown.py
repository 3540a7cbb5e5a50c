"""Graceful shutdown for rolling deploys: a running job finishes or is handed back.

SIGTERM to a worker (what Kubernetes, `docker stop` and `make run` send) starts Celery's warm
shutdown: the worker stops taking tasks and waits for the running ones. A crawl may run far
longer than an orchestrator waits, so each running job gets WORKER_SHUTDOWN_GRACE_SECONDS from
the signal to finish; past that its engine stops between pages, the items so far are flushed,
and the job goes back to `pending` with its task re-sent (first in line), so another worker
takes it over at once instead of after JOB_STALE_SECONDS. Items keep their keys, so the next
run adds none twice.

The signal reaches the main process (Kubernetes and tini signal only PID 1) or every process of
the group (`make run`, `kill -- -PGID`); either way a running job sees it: the main process
writes the time into memory its forked pool processes share, and a pool process that gets the
signal itself notes it and ends once its job is handed back.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import struct
import time
from collections.abc import Iterator
from typing import Any

from celery.signals import worker_process_init, worker_shutting_down

# The monotonic time the main process began its shutdown (0: not shutting down). Anonymous
# shared memory made at import, in the main process, before the pool forks: children see it.
_shared = mmap.mmap(-1, 8)
_local: dict[str, Any] = {"since": 0.0, "running": False, "previous": None}
_MAIN_PID = os.getpid()  # imported by the main process before it forks the pool


def _read_shared() -> float:
    return float(struct.unpack("d", _shared[:8])[0])


def begin() -> None:
    """Note that this worker is shutting down (idempotent: the first time counts)."""
    if not _read_shared():
        _shared[:8] = struct.pack("d", time.monotonic())


def since() -> float | None:
    """The monotonic time this process learnt of its shutdown, or None."""
    moments = [t for t in (_read_shared(), float(_local["since"])) if t]
    return min(moments) if moments else None


def expired(grace_seconds: float) -> bool:
    """True once the shutdown began at least `grace_seconds` ago."""
    began = since()
    return began is not None and time.monotonic() - began >= grace_seconds


def main_stopping() -> bool:
    """The worker's main process is in its shutdown (it got SIGTERM)."""
    return bool(_read_shared())


def signalled_here() -> bool:
    """This pool process got SIGTERM itself (not only its main process): it must end."""
    return bool(_local["since"])


@contextlib.contextmanager
def running_job() -> Iterator[None]:
    """Marks the span in which this process runs a job (an idle process ends on SIGTERM)."""
    _catch_sigterm()
    _local["running"] = True
    try:
        yield
    finally:
        _local["running"] = False


class GraceStop:
    """The job's sink as its engine sees it: `should_stop` also turns true once the worker's
    shutdown is older than the grace period. Everything else is the sink's."""

    def __init__(self, sink: Any, grace_seconds: float) -> None:
        self._sink = sink
        self._grace = grace_seconds
        self.tripped = False

    @property
    def should_stop(self) -> bool:
        if self._sink.should_stop:
            return True
        if expired(self._grace):
            self.tripped = True
        return self.tripped

    def page(self, url: str, status: int) -> None:
        self._sink.page(url, status)

    def items(self, page_url: str, found: list[dict[str, Any]], key: str | None = None) -> None:
        self._sink.items(page_url, found, key)

    def log(self, level: str, message: str) -> None:
        self._sink.log(level, message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)


@worker_shutting_down.connect
def _main_shutting_down(**_: object) -> None:
    begin()  # in the main process's signal handler: only a write to shared memory


@worker_process_init.connect
def _forget_parent_state(**_: object) -> None:
    _local.update(since=0.0, running=False, previous=None)


def _catch_sigterm() -> None:
    """In a pool process, take the first SIGTERM over from billiard, whose handler ends the
    process at once: a job in flight would then only come back once its heartbeat is stale.
    Installed here, at a task's start, since billiard sets its own after the process starts."""
    if os.getpid() == _MAIN_PID or signal.getsignal(signal.SIGTERM) is _on_sigterm:
        return  # the main process (solo pool) keeps Celery's handler
    _local["previous"] = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    previous = _local.get("previous") or signal.SIG_DFL
    signal.signal(signal.SIGTERM, previous)  # a second SIGTERM: billiard's way out
    if _local["running"]:
        _local["since"] = time.monotonic()  # the job finishes or is handed back, then we end
    elif callable(previous):
        previous(signum, frame)  # idle: end now, as before
    else:
        os.kill(os.getpid(), signal.SIGTERM)
