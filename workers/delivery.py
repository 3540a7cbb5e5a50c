"""Sending one webhook attempt: signed POST through the target policy, recorded, retried; and
publishing a job's outbox events (shared/outbox.py) from a worker."""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from typing import Any

import requests

from shared import accounts, tasks
from shared import db as dbmod
from shared.jobs import now
from shared.outbox import Outbox
from shared.settings import get_settings
from shared.targets import BlockedTarget, TargetPolicy
from shared.webhooks import DELIVERED, FAILED, PENDING, WebhookRepository, sign
from workers.engines import event_log

logger = logging.getLogger(__name__)
_sessions: dict[int, requests.Session] = {}


def _session() -> requests.Session:
    """This process's HTTP session: it connects only where the target policy allows."""
    pid = os.getpid()
    if pid not in _sessions:
        _sessions.clear()
        _sessions[pid] = TargetPolicy.from_settings(get_settings()).session()
    return _sessions[pid]


def send(attempt_id: str, delay: float = 0) -> None:
    """Queue the attempt on the `webhooks` queue (never a crawl worker's)."""
    from workers import celery

    celery.send_task(tasks.DELIVER_WEBHOOK, **tasks.webhook_options(attempt_id, delay))


def deliver(attempt_id: str) -> str:
    """POST one attempt; its state afterwards (delivered, failed, or gone)."""
    settings = get_settings()
    repo = WebhookRepository(dbmod.database(settings))
    attempt = repo.attempt(attempt_id)
    if attempt is None or attempt["state"] != PENDING:
        return "gone"  # delivered already (a re-delivered message), or deleted
    if accounts.is_deactivated(repo.db, attempt.get("owner_id")):
        # a retry due after its owner was deactivated: not sent, and never again
        refused = f"not sent: {accounts.DEACTIVATED}"
        repo.record(attempt_id, state=FAILED, error=refused, timestamp=now())
        logger.info("webhook %s: %s", attempt["delivery_id"], refused)
        return FAILED
    body = attempt["body"].encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": settings.user_agent,
        "X-ScrapeMaster-Event": attempt["event"],
        "X-ScrapeMaster-Event-Id": attempt["event_id"],  # the same on every attempt
        "X-ScrapeMaster-Delivery": attempt["delivery_id"],
        "X-ScrapeMaster-Signature": sign(repo.secret_for(attempt), body),
    }
    started = time.monotonic()
    status: int | None = None
    final = False
    try:
        answer = _session().post(
            attempt["url"],
            data=body,
            headers=headers,
            timeout=settings.webhook_timeout_seconds,
            allow_redirects=False,
        )
        status = answer.status_code
        error = None if 200 <= status < 300 else f"HTTP {status}"
    except BlockedTarget as exc:
        error, final = f"blocked target: {exc}", True  # no retry can change that
    except requests.Timeout:
        error = f"no answer within {settings.webhook_timeout_seconds:g} s"
    except requests.RequestException as exc:
        error = f"could not connect: {type(exc).__name__}"
    fields: dict[str, Any] = {
        "status_code": status,
        "error": error,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
        "timestamp": now(),
    }
    if error is None:
        repo.record(attempt_id, state=DELIVERED, **fields)
        return DELIVERED
    if final or attempt["attempt"] >= settings.webhook_max_attempts:
        repo.record(attempt_id, state=FAILED, **fields)
        logger.warning("webhook %s: %s; giving up", attempt["delivery_id"], error)
        return FAILED
    delay = settings.webhook_retry_base_seconds * 2 ** (attempt["attempt"] - 1)
    repo.record(attempt_id, state=FAILED, next_retry_at=now() + timedelta(seconds=delay), **fields)
    send(repo.next_attempt(attempt, delay), delay)
    return FAILED


def resend_pending(db: Any) -> int:
    """After Redis restarted empty: the messages of pending attempts (first ones, and retries
    waiting for their time) went with it, so send them again, each when it is due. `deliver`
    skips one that was delivered meanwhile. How many."""
    repo = WebhookRepository(db)
    moment, count = now(), 0
    for attempt in repo.deliveries.find({"state": PENDING}, {"timestamp": 1}):
        due = attempt.get("timestamp") or moment
        if due.tzinfo is None:
            due = due.replace(tzinfo=moment.tzinfo)
        send(attempt["_id"], max(0.0, (due - moment).total_seconds()))
        count += 1
    return count


def outbox() -> Outbox:
    """The outbox of this process: events to the stream, deliveries to the webhooks queue."""
    return Outbox(dbmod.database(get_settings()), event_log(), send)


def publish(job_id: str, job: dict[str, Any] | None = None) -> int:
    """Publish the job's pending events now (they wait for the reconciler when Redis is
    down); how many are left. `job`: as its writer has it after writing the event."""
    return outbox().publish_quietly(job_id, job)
