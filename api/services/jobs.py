"""Job operations for the API: submit, read, list, change state, delete; enqueue by task name."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from pymongo import ASCENDING, DESCENDING

from api.security import is_admin
from api.services import db, event_log, settings, webhooks
from shared import events, jobs, tasks
from shared.auto_memory import AutoMemory, learned_decision
from shared.errors import Conflict, NotFound
from shared.jobs import JobRepository
from shared.schedules import ScheduleRepository

logger = logging.getLogger(__name__)


def repo() -> JobRepository:
    return JobRepository(db())


def enqueue(job: dict[str, Any]) -> None:
    """Send the scrape task; if Redis is down the job stays pending and the reconciler sends it."""
    celery = current_app.extensions["scrapemaster_celery"]
    try:
        celery.send_task(tasks.SCRAPE, **tasks.scrape_options(job))
    except Exception:  # kombu raises many connection errors; the job is safe in MongoDB
        logger.warning("job %s saved but not enqueued; the reconciler will retry", job["_id"])


def submit(spec: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
    memory = AutoMemory.from_settings(db(), settings())
    learned = _learned(spec, memory)
    job = repo().create(owner["_id"], spec, **learned)
    if learned:
        memory.used(spec["url"], job["_id"])
        jobs.log(db(), job["_id"], "INFO", f"auto: {learned['auto_decision']['reason']}")
    enqueue(job)
    return job


def _learned(spec: dict[str, Any], memory: AutoMemory) -> dict[str, Any]:
    """An `auto` job on a site known to need the browser goes straight to its queue."""
    if spec.get("engine", "auto") != "auto":
        return {}
    remembered = memory.recall(spec["url"])
    if remembered is None or remembered["engine"] != "playwright":
        return {}
    return {"queue": tasks.QUEUE_PLAYWRIGHT, "auto_decision": learned_decision(remembered)}


def _scope(user: dict[str, Any]) -> dict[str, Any]:
    return {} if is_admin(user) else {"owner_id": user["_id"]}


def get(job_id: str, user: dict[str, Any]) -> dict[str, Any]:
    """The job if `user` may see it; another user's job is simply not found."""
    job = db().jobs.find_one({"_id": job_id, **_scope(user)})
    if job is None:
        raise NotFound(f"Job {job_id} not found")
    return job


def list_jobs(user: dict[str, Any], args: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    query = _scope(user)
    for key in ("status", "engine", "schedule_id"):
        if args.get(key):
            query[key] = args[key]
    order = ASCENDING if args["sort_order"] == "asc" else DESCENDING
    sort = [(args["sort_by"], order)]
    if args["sort_by"] != "created_at":
        sort.append(("created_at", DESCENDING))
    total = db().jobs.count_documents(query)
    cursor = db().jobs.find(query).sort(sort).skip(args["skip"]).limit(args["limit"])
    return list(cursor), total


def _change(job_id: str, user: dict[str, Any], action: str, **fields: Any) -> dict[str, Any]:
    job = get(job_id, user)
    if not jobs.allowed(action, job["status"]):
        raise Conflict(f"Cannot {action} a job that is {job['status']}")
    changed = repo().transition(job_id, action, **fields)
    if changed is None:  # the status moved between the read and the update
        current = repo().status_of(job_id)
        raise Conflict(f"Cannot {action} a job that is {current}")
    return changed


def cancel(job_id: str, user: dict[str, Any]) -> dict[str, Any]:
    job = get(job_id, user)
    if job["status"] == jobs.PENDING:
        # no worker has it: this is its last event. (A running job's worker writes it,
        # after its final counters.)
        changed = repo().transition(
            job_id, "cancel", extra_filter={"status": jobs.PENDING}, completed_at=jobs.now()
        )
        if changed is not None:
            jobs.log(db(), job_id, "INFO", f"cancelled by {user['username']}")
            event = event_log().append(
                job_id, changed.get("owner_id"), events.CANCELLED, events.counters_of(changed)
            )
            webhooks.dispatch(changed, event)
            return changed
    job = _change(job_id, user, "cancel", completed_at=jobs.now())
    jobs.log(db(), job_id, "INFO", f"cancelled by {user['username']}")
    return job


def retry(job_id: str, user: dict[str, Any]) -> dict[str, Any]:
    job = get(job_id, user)
    job = _change(
        job_id,
        user,
        "retry",
        error=None,
        completed_at=None,
        started_at=None,
        duration_seconds=None,
        progress=0,
        queue=jobs.queue_for(job["engine"]),
    )
    jobs.log(db(), job_id, "INFO", f"retried by {user['username']} (attempt {job['attempts']})")
    _follow(job)
    enqueue(job)
    return job


def _follow(job: dict[str, Any]) -> None:
    """A scheduled job runs again: its history row follows it to the new outcome."""
    if job.get("schedule_id"):
        ScheduleRepository(db()).reopen(job["_id"])


def reset(job_id: str, user: dict[str, Any]) -> dict[str, Any]:
    job = get(job_id, user)
    job = _change(
        job_id,
        user,
        "reset",
        error=None,
        completed_at=None,
        started_at=None,
        duration_seconds=None,
        progress=0,
        items_scraped=0,
        items_failed=0,
        pages_crawled=0,
        engine_used=None,
        auto_probe=None,
        auto_decision=None,
        warnings=[],
        queue=jobs.queue_for(job["engine"]),
    )
    db().results.delete_many({"job_id": job_id})
    jobs.log(db(), job_id, "INFO", f"reset by {user['username']}: results cleared")
    _follow(job)
    enqueue(job)
    return job


def update(job_id: str, user: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    job = get(job_id, user)
    if job["status"] != jobs.PENDING:
        raise Conflict(f"Only a pending job can be changed; this one is {job['status']}")
    fields: dict[str, Any] = {}
    if "url" in changes:
        fields["url"] = changes["url"]
        fields["urls"] = changes.get("urls") or [changes["url"]]
    elif "urls" in changes:
        fields["urls"], fields["url"] = changes["urls"], changes["urls"][0]
    if "selectors" in changes:
        fields["selectors"] = changes["selectors"]
    if "config" in changes:
        fields["config"] = {**job.get("config", {}), **changes["config"]}
    if "priority" in changes:
        fields["priority"] = changes["priority"]
    if not fields:
        return job
    fields["updated_at"] = jobs.now()
    updated = db().jobs.find_one_and_update(
        {"_id": job_id, "status": jobs.PENDING}, {"$set": fields}, return_document=True
    )
    if updated is None:
        raise Conflict("The job started before the change could be applied")
    if "priority" in fields and fields["priority"] != job["priority"]:
        enqueue(updated)  # the first message is a no-op for whichever worker gets it second
    return updated


def delete(job_id: str, user: dict[str, Any]) -> None:
    job = get(job_id, user)
    active = job["status"] in (jobs.PENDING, jobs.RUNNING)
    if active:
        repo().transition(job_id, "cancel", completed_at=jobs.now())  # the worker stops
    repo().delete(job_id, active=active or job["status"] == jobs.CANCELLED)
    event_log().delete_job(job_id)


def batch_delete(job_ids: list[str], user: dict[str, Any]) -> dict[str, Any]:
    deleted, errors = 0, []
    for job_id in dict.fromkeys(job_ids):
        try:
            delete(job_id, user)
            deleted += 1
        except NotFound as exc:
            errors.append({"job_id": job_id, "detail": exc.detail, "type": exc.type})
    return {"deleted": deleted, "failed": len(errors), "errors": errors}


def retry_failed(user: dict[str, Any]) -> dict[str, int]:
    retried = 0
    for job in db().jobs.find({"owner_id": user["_id"], "status": jobs.FAILED}, {"_id": 1}):
        try:
            retry(job["_id"], user)
            retried += 1
        except Conflict:
            continue
    return {"retried": retried}


def stats(user: dict[str, Any]) -> dict[str, int]:
    counts = {status: 0 for status in jobs.STATUSES}
    for row in db().jobs.aggregate(
        [{"$match": _scope(user)}, {"$group": {"_id": "$status", "n": {"$sum": 1}}}]
    ):
        if row["_id"] in counts:
            counts[row["_id"]] = row["n"]
    return {"total": sum(counts.values()), **counts}


def logs(job_id: str, user: dict[str, Any], level: str | None, limit: int) -> dict[str, Any]:
    get(job_id, user)
    query: dict[str, Any] = {"job_id": job_id}
    if level:
        order = ["DEBUG", "INFO", "WARNING", "ERROR"]
        query["level"] = {"$in": order[order.index(level.upper()) :]}
    lines = list(
        db().logs.find(query).sort([("timestamp", ASCENDING), ("_id", ASCENDING)]).limit(limit)
    )
    return {"logs": lines}
