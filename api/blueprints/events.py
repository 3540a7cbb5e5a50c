"""Live job events as Server-Sent Events: one job's stream, or all of the caller's jobs."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

from flask import Response, request, stream_with_context
from flask.views import MethodView

from api import stream_slots
from api.json_guard import Blueprint
from api.security import STREAM_RECHECK_SECONDS, StreamUser, authenticate_stream
from api.services import db, event_log, settings
from api.services import jobs as job_service
from shared import events
from shared.errors import ValidationFailed

blp = Blueprint("events", __name__, url_prefix="/api/v1", description="Live job events (SSE)")

_EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_SSE_DOC = {
    "parameters": [
        {
            "in": "query",
            "name": "token",
            "schema": {"type": "string"},
            "description": "an access token or API key (EventSource cannot send headers)",
        },
        {
            "in": "query",
            "name": "last_event_id",
            "schema": {"type": "string", "pattern": r"^\d{1,20}-\d{1,20}$"},
            "description": "resume after this event id (as the Last-Event-ID header)",
        },
        {"in": "header", "name": "Last-Event-ID", "schema": {"type": "string"}},
    ],
    "responses": {
        "200": {
            "description": "`id:`, `event:` and `data:` lines per event",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
}


def _after(default: str | None) -> str | None:
    """Where to resume: the Last-Event-ID header or ?last_event_id=, else `default`."""
    value = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or ""
    value = value.strip()
    if not value:
        return default
    if not _EVENT_ID.match(value):
        raise ValidationFailed(
            "Invalid input: last_event_id",
            {"last_event_id": ["An event id looks like 1732420000000-0."]},
        )
    return value


def _message(event: dict[str, Any]) -> str:
    data = json.dumps(event, separators=(",", ":"), default=str)
    return f"id: {event['id']}\nevent: {event['type']}\ndata: {data}\n\n"


def _response(stream: Iterator[str], user: dict[str, Any]) -> Response:
    """The stream as SSE, holding one of the user's stream slots until it closes (also when
    the client goes away: the server closes the response at its next write)."""
    slot = stream_slots.take(user["_id"])
    response = Response(
        stream_with_context(slot.held(stream)),
        content_type="text/event-stream; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(slot.release)
    return response


def _block_ms() -> int:
    """How long one read waits for events: short enough to re-check the user in time."""
    return int(min(settings().sse_heartbeat_seconds, STREAM_RECHECK_SECONDS) * 1000)


def _run_start(job: dict[str, Any]) -> str:
    """The id after which the job's current run's events are: after a retry or reset, the
    stream's newest event at that moment; else the start."""
    return str(job.get("events_from") or "0-0")


def _job_events(job: dict[str, Any], after: str | None, user: StreamUser) -> Iterator[str]:
    """The job's events as SSE messages. Without a resume id: the current run's, from its
    first to its terminal event (an earlier run's are skipped, so a `wait` after a retry or
    reset waits for this run's end). With one: exactly what came after it."""
    log, stream = event_log(), events.job_stream(job["_id"])
    block_ms, heartbeat = _block_ms(), settings().sse_heartbeat_seconds
    quiet_since = time.monotonic()
    yield "retry: 2000\n\n"
    run = int(job.get("run") or 1) if after is None else 0  # resuming: skip nothing
    if after is None:
        after = _run_start(job)
        if _not_before(log.last_id(stream), after):
            # nothing of this run in the stream (expired, or Redis was down): its end is the
            # job document's
            rebuilt = events.terminal_from_job(job)
            if rebuilt is not None:
                yield _message(rebuilt)
                return
    while user.still_allowed():  # a deactivated or demoted user's stream ends
        batch = log.read(stream, after, block_ms=block_ms)
        for event in batch:
            after = event["id"]
            of = events.run_of(event)
            if of is not None and of < run:
                continue  # a late event of an earlier run
            yield _message(event)
            if event["type"] in events.TERMINAL:
                return  # the terminal event is the job's last
        if batch:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= heartbeat:
            quiet_since = time.monotonic()
            current = db().jobs.find_one({"_id": job["_id"]}, {"status": 1})
            if current is None:
                return  # deleted
            if current["status"] in ("completed", "failed", "cancelled") and _not_before(
                log.last_id(stream), after
            ):
                return  # a client resuming after the end: nothing more will come
            yield ": keep-alive\n\n"


def _not_before(last: str, after: str) -> bool:
    """Whether event id `after` is at or past `last` ("0" is "0-0")."""
    a, b = (tuple(int(p) for p in f"{x}-0".split("-")[:2]) for x in (after, last))
    return a >= b


def _user_events(user: dict[str, Any], after: str, checked: StreamUser) -> Iterator[str]:
    log, stream = event_log(), events.user_stream(user["_id"])
    block_ms, heartbeat = _block_ms(), settings().sse_heartbeat_seconds
    quiet_since = time.monotonic()
    if after == "$":
        after = log.last_id(stream)  # from now on, and no event lost between two reads
    # the position as an id: a client cut off before the first event resumes from here too
    yield f"retry: 2000\nid: {after}\n\n"
    while checked.still_allowed():  # a deactivated or demoted user's stream ends
        batch = log.read(stream, after, block_ms=block_ms)
        for event in batch:
            after = event["id"]
            yield _message(event)
        if batch:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= heartbeat:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"


@blp.route("/jobs/<job_id>/events")
class JobEvents(MethodView):
    @blp.doc(**_SSE_DOC)
    def get(self, job_id):
        """This job's events as SSE: its current run's (after a retry or reset, that run's),
        then live; ends after the run's terminal event. Last-Event-ID resumes after that id."""
        user = authenticate_stream()
        job = job_service.get(job_id, user)  # another user's job: 404
        return _response(_job_events(job, _after(None), StreamUser(user)), user)


@blp.route("/events")
class UserEvents(MethodView):
    @blp.doc(**_SSE_DOC)
    def get(self):
        """Events of all the caller's jobs as SSE, from now (or Last-Event-ID) on."""
        user = authenticate_stream()
        return _response(_user_events(user, _after("$") or "$", StreamUser(user)), user)
