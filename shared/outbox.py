"""The event outbox: events users are told about, stored with the job's state, then published.

A durable event (shared/events.py DURABLE) is written into its job document in the same update
as the state it reports (`fields`: `outbox.<key>`, and `outbox_pending`, the number of events
waiting, goes up by one), so it exists as soon as the state does, whatever Redis is doing.
`Outbox.publish` then adds a job's pending events to its stream and plans their webhook
deliveries, oldest first, and removes each one once done. The process that wrote the event
publishes it at once; beat's reconciler publishes what is left (Redis was down, or that process
died) once Redis answers again. Publishing is at least once and idempotent: the stream entry is
added once per event key and the event keeps the id it was first given (recorded before any
webhook carries it), and deliveries have ids made from the event key, so a repeated publish
sends nothing new except a first attempt that may never have been sent. Receivers de-duplicate
on X-ScrapeMaster-Event-Id.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database

from shared import events
from shared.jobs import apply_update
from shared.webhooks import WebhookRepository

logger = logging.getLogger(__name__)

PENDING = "outbox_pending"  # how many events wait in the job's outbox (a sparse index)


def fields(type_: str, data: dict[str, Any], moment: datetime | None = None) -> dict[str, Any]:
    """The `$set` fields that put one event into a job's outbox; the update that writes the
    state the event reports sets them, with `$inc` `outbox_pending` by `count(fields)`
    (`JobRepository.transition` and `store_counters` do that themselves)."""
    moment = moment or datetime.now(UTC)
    entry = {
        "type": type_,
        "timestamp": events.stamp(moment),
        "data": data,
        "seq": time.time_ns(),  # orders a job's events; one writer at a time per job
        "at": moment,
    }
    return {f"outbox.{uuid.uuid4().hex}": entry}


def count(update_set: dict[str, Any]) -> int:
    """How many outbox events a `$set` writes."""
    return sum(1 for name in update_set if name.startswith("outbox."))


def add(
    db: Database, job: dict[str, Any], type_: str, data: dict[str, Any], **match: Any
) -> dict[str, Any] | None:
    """Put an event into the outbox of `job` while it matches `match` (e.g. its run); the job
    as it is then (to publish from), or None when it no longer matches."""
    written = fields(type_, data)
    update = {"$set": written, "$inc": {PENDING: 1}}
    if not db.jobs.update_one({"_id": job["_id"], **match}, update).matched_count:
        return None
    return apply_update(job, update)


class Outbox:
    """Publishes jobs' pending events: the stream through `log`, webhooks through `send`."""

    def __init__(self, db: Database, log: events.EventLog, send: Callable[[str], Any]) -> None:
        self.db = db
        self.log = log
        self.send = send

    def publish(self, job_id: str, job: dict[str, Any] | None = None, older_than: float = 0) -> int:
        """Publish the job's pending events in order (those written more than `older_than`
        seconds ago); stops at the first that cannot be published yet. How many are left.
        `job`: the job as its writer has it after writing the event (saves a read; an event
        another process published meanwhile is published again under the same id)."""
        if job is None:
            job = self.db.jobs.find_one(
                {"_id": job_id}, {"owner_id": 1, "webhook_url": 1, "outbox": 1}
            )
        if job is None:
            return 0
        pending = sorted((job.get("outbox") or {}).items(), key=lambda kv: kv[1].get("seq", 0))
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        for done, (key, entry) in enumerate(pending):
            written = entry.get("at")
            if older_than and written is not None and _aware(written) > cutoff:
                return len(pending) - done  # its writer is publishing it right now
            if not self._one(job, key, entry):
                return len(pending) - done
        return 0

    def publish_quietly(self, job_id: str, job: dict[str, Any] | None = None) -> int:
        """`publish` for a process whose own work must go on: a failure leaves the events
        for the reconciler. How many are left (1 when unknown)."""
        try:
            return self.publish(job_id, job)
        except Exception:  # the store or the broker failed mid-way: the outbox keeps them
            logger.warning("job %s: events left in the outbox", job_id, exc_info=True)
            return 1

    def drain(self, older_than: float, limit: int = 500) -> int:
        """Publish every job's events left in the outbox (beat's reconciler); jobs done."""
        published = 0
        for job in self.db.jobs.find({PENDING: {"$gt": 0}}, {"_id": 1}).limit(limit):
            try:
                left = self.publish(job["_id"], older_than=older_than)
            except Exception:  # one job's trouble must not hold up the others (nor upkeep)
                logger.exception("job %s: publishing its outbox failed", job["_id"])
                continue
            if left == 0:
                published += 1
        return published

    def _one(self, job: dict[str, Any], key: str, entry: dict[str, Any]) -> bool:
        job_id = job["_id"]
        event_id = self.log.publish(job_id, job.get("owner_id"), key, entry)
        if event_id is None:
            return False  # Redis is down: this one and every later one wait
        event = {
            "id": event_id,
            "type": entry["type"],
            "job_id": job_id,
            "timestamp": entry["timestamp"],
            "data": entry.get("data") or {},
        }
        hooks = WebhookRepository(self.db)
        targets = hooks.targets(job, entry["type"])
        if targets and entry.get("id") != event_id:
            # before any webhook carries the id: a publish repeated after Redis lost its
            # record of this one gives the event the same id again
            self.db.jobs.update_one(
                {"_id": job_id, f"outbox.{key}": {"$exists": True}},
                {"$set": {f"outbox.{key}.id": event_id}},
            )
        for attempt_id in hooks.plan_once(job, event, key, targets):
            self.send(attempt_id)
        # counted down only by whoever removes it, so a publish repeated meanwhile cannot
        self.db.jobs.update_one(
            {"_id": job_id, f"outbox.{key}": {"$exists": True}},
            {"$unset": {f"outbox.{key}": ""}, "$inc": {PENDING: -1}},
        )
        return True


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
