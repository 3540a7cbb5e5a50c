"""Live events over SSE (httpx-sse), resumed with Last-Event-ID whenever a connection breaks."""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError

from scrapemaster._paths import seg
from scrapemaster.errors import ConnectionFailed, ScrapeMasterError, ServerError
from scrapemaster.models import TERMINAL_EVENTS, TERMINAL_STATUSES, Event
from scrapemaster.transport import Transport

TRANSIENT_STATUSES = frozenset({502, 503, 504})
MAX_DELAY = 30.0


class EventStream:
    """An iterator over the events of one SSE endpoint.

    When the connection breaks (reset, a truncated answer, no byte within `read_timeout`,
    which is longer than the server's heartbeat, or a 502/503/504 on reconnecting), it
    reconnects after the server's `retry:` delay (doubling on each failure in a row, at most
    30 s) with `Last-Event-ID` set to the last event it yielded, so the server sends exactly
    what came after: nothing lost, nothing repeated. After `max_retries` failures in a row it
    raises ConnectionFailed. A job's stream ends after the job's terminal event; given the
    job's `run` (1, then +1 on each retry or reset), after that run's terminal event: an
    earlier run's events are skipped, whatever the server replays.

    The first connection is made at once, so `/events` ("from now on") misses nothing that
    happens after the stream was created, and a bad job id or token raises right here.
    """

    def __init__(
        self,
        transport: Transport,
        path: str,
        *,
        job_id: str | None = None,
        run: int | None = None,
        last_event_id: str | None = None,
        read_timeout: float = 60.0,
        max_retries: int = 10,
        reconnect_delay: float | None = None,
    ) -> None:
        self._t = transport
        self._path = path
        self._job_id = job_id
        self._follow_run = run
        self.last_event_id = last_event_id
        self.reconnects = 0  # how often the stream was resumed
        self._timeout = httpx.Timeout(10.0, read=read_timeout)
        self._max_retries = max_retries
        self._fixed_delay = reconnect_delay
        self._server_delay = 2.0
        self._answer: httpx.Response | None = self._open()
        self._events = self._run()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def close(self) -> None:
        """Drop the connection (also on leaving a `with` block)."""
        self._events.close()
        if self._answer is not None:  # never iterated
            self._answer.close()
            self._answer = None

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _delay(self, failures: int) -> float:
        base = self._server_delay if self._fixed_delay is None else self._fixed_delay
        return min(MAX_DELAY, base * 2 ** max(0, failures - 1))

    def _run(self) -> Generator[Event, None, None]:
        failures = 0
        while True:
            received = 0
            problem: str
            connection = None
            earlier_end = False  # the server ended at an earlier run's terminal event
            try:
                answer, self._answer = self._answer or self._open(), None
                connection = self._connection(answer)
                for event in connection:
                    received += 1
                    failures = 0
                    if self._earlier_run(event):
                        earlier_end = event.get("type") in TERMINAL_EVENTS
                        continue
                    yield event
                    if self._job_id and event.get("type") in TERMINAL_EVENTS:
                        return  # a job's last event
                if earlier_end:
                    self.reconnects += 1
                    continue  # what came after it: this run's events
                if self._job_id and self._job_ended():
                    return  # resumed after the end: nothing more will come
                problem = "the server ended the stream"
            except httpx.TransportError as exc:
                problem = str(exc) or type(exc).__name__
            except ConnectionFailed as exc:
                problem = str(exc)
            except ServerError as exc:
                if exc.status not in TRANSIENT_STATUSES:
                    raise
                problem = exc.describe()
            finally:
                if connection is not None:
                    connection.close()  # at once, also when the caller stops iterating
            if not received:
                failures += 1
            if failures > self._max_retries:
                raise ConnectionFailed(
                    f"event stream {self._path} lost after {failures} attempts: {problem}"
                )
            time.sleep(self._delay(max(failures, 1)))
            self.reconnects += 1

    def _open(self) -> httpx.Response:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        return self._t.send("GET", self._path, stream=True, headers=headers, timeout=self._timeout)

    def _connection(self, answer: httpx.Response) -> Generator[Event, None, None]:
        try:
            for message in EventSource(answer).iter_sse():
                if message.retry is not None:
                    self._server_delay = max(0.0, message.retry / 1000)
                if not message.data:
                    continue  # the retry preamble
                event = _decode(message.data)
                self.last_event_id = message.id or event.get("id") or self.last_event_id
                yield event
        except SSEError as exc:
            raise ScrapeMasterError(f"{self._path} is not an event stream: {exc}") from None
        finally:
            answer.close()

    def _earlier_run(self, event: Event) -> bool:
        """Whether `event` belongs to a run before the one this stream follows."""
        if self._follow_run is None or not self._job_id:
            return False
        run = (event.get("data") or {}).get("run")
        if isinstance(run, int):
            return run < self._follow_run
        # a server whose events do not say their run: a terminal event is this run's only
        # if the job has ended
        return event.get("type") in TERMINAL_EVENTS and not self._job_ended()

    def _job_ended(self) -> bool:
        job = self._t.call("GET", f"/jobs/{seg(self._job_id or '')}")  # deleted: NotFound
        return job.get("status") in TERMINAL_STATUSES


def _decode(data: str) -> Any:
    try:
        event = json.loads(data)
    except ValueError:
        raise ScrapeMasterError(f"an event that is not JSON: {data[:80]!r}") from None
    if not isinstance(event, dict):
        raise ScrapeMasterError(f"an event that is not an object: {data[:80]!r}")
    return event


class Events:
    """`client.events`: a job's event stream, or the stream of all the caller's jobs."""

    def __init__(self, transport: Transport, **options: Any) -> None:
        self._t = transport
        self._options = options

    def job(
        self, job_id: str, *, last_event_id: str | None = None, run: int | None = None
    ) -> EventStream:
        """The job's events from its current run's first (or after `last_event_id`) to its
        terminal one; with `run` (the job's `run` field), never an earlier run's."""
        return EventStream(
            self._t,
            f"/jobs/{seg(job_id)}/events",
            job_id=job_id,
            run=run,
            last_event_id=last_event_id,
            **self._options,
        )

    def all(self, *, last_event_id: str | None = None) -> EventStream:
        """Every event of the caller's jobs from now (or after `last_event_id`) on; endless."""
        return EventStream(self._t, "/events", last_event_id=last_event_id, **self._options)
