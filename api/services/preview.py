"""Selector preview: send one page of a job to a worker by task name and wait for its answer
on Redis (a gevent worker waits without holding a thread)."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from typing import Any

import redis
from flask import current_app

from api.services import secrets, settings
from shared import preview, tasks
from shared.errors import DomainError, Unavailable
from shared.jobspec import needs_browser_login

logger = logging.getLogger(__name__)
GRACE_SECONDS = 5.0  # past the page's own timeout: the worker's set-up and the answer's trip


class PreviewTimedOut(DomainError):
    status = 504
    type = "unavailable"


def _client() -> redis.Redis:
    found = current_app.extensions.get("scrapemaster_previews")
    if found is None:
        s = settings()
        found = redis.Redis.from_url(
            s.redis_url,
            socket_connect_timeout=2,
            # a BLPOP waits up to the preview's whole time: the socket must wait longer
            socket_timeout=s.preview_timeout_seconds + s.preview_pickup_seconds + 30,
        )
        current_app.extensions["scrapemaster_previews"] = found
    return found


def _no_worker(queue: str, waited: float) -> Unavailable:
    return Unavailable(
        f"No {queue} worker took the preview within {waited:g} s: none is running, or all are "
        "busy with jobs; try again shortly (PREVIEW_PICKUP_SECONDS)",
        headers={"Retry-After": "5"},
    )


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """The items `spec`'s selectors extract from its first page, as a worker's engine saw it."""
    s = settings()
    body = preview.job_body(spec, s.preview_timeout_seconds)
    if needs_browser_login(body["config"]):
        body["engine"] = "playwright"  # the login is the browser's; the preview stays there
    body = secrets.sealed_body(body)  # through Redis sealed, like a stored job
    preview_id = uuid.uuid4().hex
    client = _client()
    engine = body["engine"]
    started = time.monotonic()
    try:
        preview.reopen(client, preview_id, s.preview_pickup_seconds)
        options = tasks.preview_options(preview_id, body, engine, s.preview_pickup_seconds)
        current_app.extensions["scrapemaster_celery"].send_task(tasks.PREVIEW, **options)
    except Exception as exc:  # Redis down: kombu and redis-py raise many kinds
        logger.warning("preview %s not sent: %s", preview_id, exc)
        raise Unavailable(
            "The queue (Redis) is unavailable; try again shortly", headers={"Retry-After": "5"}
        ) from None
    try:
        return _wait(client, preview_id, engine, started)
    except redis.RedisError:
        raise Unavailable(
            "The queue (Redis) is unavailable; try again shortly", headers={"Retry-After": "5"}
        ) from None
    finally:
        with contextlib.suppress(redis.RedisError):  # else the keys expire by themselves
            preview.forget(client, preview_id)


def _wait(client: redis.Redis, preview_id: str, engine: str, started: float) -> dict[str, Any]:
    s = settings()
    queue = tasks.QUEUE_PLAYWRIGHT if engine == "playwright" else tasks.QUEUE_SCRAPY
    taken = False
    deadline = time.monotonic() + s.preview_pickup_seconds
    while True:
        message = preview.next_message(client, preview_id, deadline - time.monotonic())
        if message is None:
            if not taken:
                raise _no_worker(queue, s.preview_pickup_seconds)
            raise PreviewTimedOut(
                f"The preview did not finish within {s.preview_timeout_seconds:g} s "
                "(PREVIEW_TIMEOUT_SECONDS); the page may be slow, or wait_for never matched"
            )
        state = message["state"]
        if state == preview.STARTED:
            taken = True
            deadline = time.monotonic() + s.preview_timeout_seconds + GRACE_SECONDS
        elif state == preview.HANDOFF:  # auto: the page needs a browser
            taken, queue = False, tasks.QUEUE_PLAYWRIGHT
            deadline = time.monotonic() + s.preview_pickup_seconds
        elif state == preview.DONE:
            result = message["result"]
            result["duration_ms"] = round((time.monotonic() - started) * 1000)
            return result
        else:
            raise Unavailable(f"The preview worker answered {state!r}; try again")
