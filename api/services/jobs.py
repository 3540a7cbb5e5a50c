"""Job operations for the API: submit, read, list, change state, delete; enqueue by task name."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

import redis
from flask import current_app
from pymongo import ASCENDING, DESCENDING

from api.schemas import check_job
from api.security import is_admin
from api.services import db, event_log, secrets, settings, webhooks
from shared import events, items, jobs, outbox, spider_jobs, tasks
from shared.actions import browser_required, required_decision
from shared.auto_memory import AutoMemory, learned_decision
from shared.counters import JobCounters
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.files import JobFiles
from shared.jobs import JobDoc, JobError, JobRepository
from shared.jobspec import browser_reasons, needs_browser_login
from shared.listing import CursorNotFound, JobListing, Page
from shared.schedules import ScheduleRepository
from shared.spider_sandbox import list_spiders
from shared.users import UserDoc

logger = logging.getLogger(__name__)


def repo() -> JobRepository:
    return JobRepository(db())


def enqueue(job: JobDoc) -> None:
    """Send the scrape task; if Redis is down the job stays pending and the reconciler sends it."""
    celery = current_app.extensions["scrapemaster_celery"]
    try:
        celery.send_task(tasks.SCRAPE, **tasks.scrape_options(job))
    except Exception:  # kombu raises many connection errors; the job is safe in MongoDB
        logger.warning("job %s saved but not enqueued; the reconciler will retry", job["_id"])
        jobs.mark_unsent(db(), job["_id"])


def submit(spec: dict[str, Any], owner: UserDoc, job_id: str | None = None) -> JobDoc:
    """Store and enqueue a job from a checked POST /jobs body; `job_id` when the caller chose
    it (Scrapyd's `jobid`: DuplicateKeyError when taken)."""
    quota = settings().max_stored_items_per_user
    if quota:
        stored = JobCounters(db()).stored_items(owner["_id"])
        if stored >= quota:
            raise Conflict(
                f"Stored items quota reached ({stored} of {quota}, MAX_STORED_ITEMS_PER_USER): "
                "delete or reset jobs to make room"
            )
    if spec.get("engine") == "spider":
        _check_spider(spec["spider"], owner)
    spec = secrets.sealed_body(spec)  # stored sealed; the worker opens it just before use
    memory = AutoMemory.from_settings(db(), settings())
    learned = _learned(spec, memory)
    job = repo().create(owner["_id"], spec, job_id=job_id, **learned)
    if learned:
        if learned["auto_decision"].get("learned"):
            memory.used(spec["url"], job["_id"])
        jobs.log(db(), job["_id"], "INFO", f"auto: {learned['auto_decision']['reason']}")
    elif spec.get("engine", "auto") == "auto" and job["queue"] == tasks.QUEUE_PLAYWRIGHT:
        config = spec.get("config") or {}
        needs = browser_reasons(config) + (["a login"] if needs_browser_login(config) else [])
        jobs.log(
            db(), job["_id"], "INFO", f"auto: the job asks for {' and '.join(needs)} → playwright"
        )
    enqueue(job)
    return job


def _check_spider(spider: dict[str, Any], owner: UserDoc) -> None:
    """The caller's own project, version and spider must exist (listing an egg's spiders runs
    it in the sandbox once per version; the names are kept with the egg)."""
    try:
        spider_jobs.check(
            db(),
            str(owner["_id"]),
            spider,
            functools.partial(list_spiders, settings=settings()),
            settings().spider_list_timeout_seconds,
        )
    except spider_jobs.SpiderSpecError as exc:
        field = f"spider.{exc.field}"
        raise ValidationFailed(f"Invalid input: {field}", {field: [exc.message]}) from None


def _learned(spec: dict[str, Any], memory: AutoMemory) -> dict[str, Any]:
    """An `auto` job on a site known to need the browser goes straight to its queue."""
    if spec.get("engine", "auto") != "auto":
        return {}
    needs = browser_required(spec.get("config"))
    if needs:  # actions, next_click, a login: only the browser carries them out
        return {"queue": tasks.QUEUE_PLAYWRIGHT, "auto_decision": required_decision(needs)}
    if browser_reasons(spec.get("config") or {}):
        return {}  # in the browser from the start (shared/jobs.queue_for)
    remembered = memory.recall(spec["url"])
    if remembered is None or remembered["engine"] != "playwright":
        return {}
    return {"queue": tasks.QUEUE_PLAYWRIGHT, "auto_decision": learned_decision(remembered)}


def _scope(user: UserDoc) -> dict[str, Any]:
    return {} if is_admin(user) else {"owner_id": user["_id"]}


def get(job_id: str, user: UserDoc) -> JobDoc:
    """The job if `user` may see it; another user's job is simply not found."""
    job = db().jobs.find_one({"_id": job_id, **_scope(user)})
    if job is None:
        raise NotFound(f"Job {job_id} not found")
    return job


def detail(job_id: str, user: UserDoc) -> dict[str, Any]:
    """The job as GET /jobs/{id} answers it: with the count and bytes of its files."""
    job = get(job_id, user)
    return {**job, "files": JobFiles(db()).usage_for_job(job_id)}


def list_jobs(user: UserDoc, args: dict[str, Any]) -> Page:
    """One page of the caller's jobs (everyone's for an admin), from windows of an index."""
    owner = None if is_admin(user) else user["_id"]
    filters = {key: args[key] for key in ("status", "engine", "schedule_id") if args.get(key)}
    descending = args["sort_order"] != "asc"
    if args["sort_by"] != "created_at":
        return _sorted_page(owner, filters, args, descending)
    try:
        return JobListing(db()).page(
            owner,
            filters,
            descending=descending,
            skip=args["skip"],
            limit=args["limit"],
            after=args.get("after"),
            before=args.get("before"),
        )
    except CursorNotFound as exc:
        field = "after" if args.get("after") else "before"
        message = f"no job {exc.args[0]} to page from"
        raise ValidationFailed(f"Invalid input: {field}", {field: [message]}) from None


def _sorted_page(
    owner: str | None, filters: dict[str, Any], args: dict[str, Any], descending: bool
) -> Page:
    """Orders other than creation: the store sorts every matching job (documented)."""
    query = {} if owner is None else {"owner_id": owner}
    query.update(filters)
    order = DESCENDING if descending else ASCENDING
    sort = [(args["sort_by"], order), ("created_at", DESCENDING)]
    total = JobListing(db()).total(owner, filters)
    cursor = db().jobs.find(query).sort(sort).skip(args["skip"]).limit(args["limit"])
    found = list(cursor)
    return Page(found, total, args["skip"] + len(found) < total)


def _change(job_id: str, user: UserDoc, action: str, **fields: Any) -> JobDoc:
    job = get(job_id, user)
    if not jobs.allowed(action, job["status"]):
        raise Conflict(f"Cannot {action} a job that is {job['status']}")
    changed = repo().transition(job_id, action, current=job, **fields)
    if changed is None:  # the status moved between the read and the update
        current = repo().status_of(job_id)
        raise Conflict(f"Cannot {action} a job that is {current}")
    return changed


def publish(job: JobDoc) -> None:
    """Publish the job's outbox events now (shared/outbox.py; `job` as just written); when
    Redis is down they wait for the reconciler."""
    outbox.Outbox(db(), event_log(), webhooks.send).publish_quietly(job["_id"], job)


def cancel(job_id: str, user: UserDoc, error: JobError | None = None) -> JobDoc:
    """Cancel a pending or running job; `error` ({type, message}) says why, when not asked for
    by its owner (the owner's account was deactivated)."""
    job = get(job_id, user)
    why = {"error": error} if error else {}
    said = f"cancelled by {user['username']}" + (f": {error['message']}" if error else "")
    if job["status"] == jobs.PENDING:
        # no worker has it: this is its last event, written with the state. (A running
        # job's run writes it with its final counters; the reconciler, should it die first.)
        data = {
            **events.counters_of({**job, "status": jobs.CANCELLED}),
            **why,
            **events.about(job),
        }
        changed = repo().transition(
            job_id,
            "cancel",
            extra_filter={"status": jobs.PENDING},
            current=job,
            completed_at=jobs.now(),
            **why,
            **outbox.fields(events.CANCELLED, data),
        )
        if changed is not None:
            jobs.log(db(), job_id, "INFO", said)
            publish(changed)
            return changed
    # a running job: the figures of what it stored so far (its run stores the final ones as
    # it stops, the items of its page in flight included; should it die first, the
    # reconciler counts what it stored: `unsettled`)
    stored = items.count(db(), job_id)
    job = _change(
        job_id,
        user,
        "cancel",
        completed_at=jobs.now(),
        unsettled=True,
        items_scraped=stored,
        **why,
    )
    jobs.log(db(), job_id, "INFO", said)
    job.pop("unsettled", None)
    return job


def _events_from(job_id: str) -> str:
    """Where the job's next run starts in its event stream: after its newest event, so
    GET /jobs/{id}/events (and so `wait`) replays the new run, not an old run's end. Redis
    down: from the start (events name their run, and the stream skips older runs')."""
    try:
        return event_log().last_id(events.job_stream(job_id))
    except redis.RedisError:
        return "0-0"


def retry(job_id: str, user: UserDoc) -> JobDoc:
    job = get(job_id, user)
    job = _change(
        job_id,
        user,
        "retry",
        events_from=_events_from(job_id),
        error=None,
        completed_at=None,
        started_at=None,
        duration_seconds=None,
        progress=0,
        queue=jobs.queue_for(job["engine"], job.get("config")),
        session=None,  # a login job logs in afresh
        takeovers=0,  # by hand: MAX_JOB_ATTEMPTS counts afresh
    )
    jobs.log(db(), job_id, "INFO", f"retried by {user['username']} (attempt {job['attempts']})")
    _follow(job)
    enqueue(job)
    return job


def _follow(job: JobDoc) -> None:
    """A scheduled job runs again: its history row follows it to the new outcome."""
    if job.get("schedule_id"):
        ScheduleRepository(db()).reopen(job["_id"])


def reset(job_id: str, user: UserDoc) -> JobDoc:
    job = get(job_id, user)
    job = _change(
        job_id,
        user,
        "reset",
        events_from=_events_from(job_id),
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
        queue=jobs.queue_for(job["engine"], job.get("config")),
        session=None,  # a login job logs in afresh
        takeovers=0,
    )
    db().results.delete_many({"job_id": job_id})
    JobFiles(db()).delete_for_job(job_id)
    jobs.log(db(), job_id, "INFO", f"reset by {user['username']}: results cleared")
    _follow(job)
    enqueue(job)
    return job


BODY_FIELDS = ("url", "urls", "engine", "priority", "selectors", "config", "webhook_url")


def update(job_id: str, user: UserDoc, changes: dict[str, Any]) -> JobDoc:
    job = get(job_id, user)
    if job["status"] != jobs.PENDING:
        raise Conflict(f"Only a pending job can be changed; this one is {job['status']}")
    stored: Mapping[str, Any] = job
    body = {key: stored[key] for key in BODY_FIELDS if stored.get(key) is not None}
    # merged and checked in the clear, sealed again as it is stored; `***` keeps a secret
    body["config"] = secrets.opened(job.get("config"))
    if "url" in changes:
        body["url"] = changes["url"]
        body["urls"] = changes.get("urls") or [changes["url"]]
    elif "urls" in changes:
        body["urls"], body["url"] = changes["urls"], changes["urls"][0]
    if "config" in changes:
        body["config"] = {**body["config"], **secrets.with_kept(changes["config"], body["config"])}
    body.update({key: changes[key] for key in ("selectors", "priority") if key in changes})
    # the job the change makes must pass exactly what POST /jobs would accept
    checked = check_job(body)
    changed = {"url", "urls"} if {"url", "urls"} & set(changes) else set()
    changed |= {key for key in ("selectors", "config", "priority") if key in changes}
    fields: dict[str, Any] = {key: checked[key] for key in changed}
    if not fields:
        return job
    if "config" in fields:
        fields["config"] = secrets.sealed(fields["config"])
    queue = jobs.queue_for(job["engine"], checked.get("config"))
    # now asks for what only the browser does (files, a login), or a login was removed: the
    # job starts elsewhere (the old task finds it gone); a decided auto job stays where it is
    moved = queue != job.get("queue") and (
        queue == tasks.QUEUE_PLAYWRIGHT or not job.get("auto_decision")
    )
    if moved:
        fields["queue"] = queue
    fields["updated_at"] = jobs.now()
    # update_one, not find_one_and_update: SecantusDB scans for every findAndModify
    if (
        not db()
        .jobs.update_one({"_id": job_id, "status": jobs.PENDING}, {"$set": fields})
        .matched_count
    ):
        raise Conflict("The job started before the change could be applied")
    updated = jobs.apply_update(job, {"$set": fields})
    if moved or ("priority" in fields and fields["priority"] != job["priority"]):
        enqueue(updated)  # the first message is a no-op for whichever worker gets it second
    return updated


def delete(job_id: str, user: UserDoc) -> None:
    job: JobDoc | None = get(job_id, user)
    assert job is not None
    if job["status"] in (jobs.PENDING, jobs.RUNNING):
        # the worker stops; the delete below counts the job out from where this leaves it
        job = repo().transition(job_id, "cancel", current=job, completed_at=jobs.now())
    repo().delete(job_id, active=jobs.may_have_writer(job or repo().get(job_id)), current=job)
    event_log().delete_job(job_id)


def batch_delete(job_ids: list[str], user: UserDoc) -> dict[str, Any]:
    deleted, errors = 0, []
    for job_id in dict.fromkeys(job_ids):
        try:
            delete(job_id, user)
            deleted += 1
        except NotFound as exc:
            errors.append({"job_id": job_id, "detail": exc.detail, "type": exc.type})
    return {"deleted": deleted, "failed": len(errors), "errors": errors}


def retry_failed(user: UserDoc) -> dict[str, int]:
    retried = 0
    for job in db().jobs.find({"owner_id": user["_id"], "status": jobs.FAILED}, {"_id": 1}):
        try:
            retry(job["_id"], user)
            retried += 1
        except Conflict:
            continue
    return {"retried": retried}


def stats(user: UserDoc) -> dict[str, int]:
    counters = JobCounters(db())
    docs = counters.of(None if is_admin(user) else user["_id"])
    counts = counters.by_status(counters.cells(docs))
    return {"total": sum(counts.values()), **counts}


def logs(job_id: str, user: UserDoc, level: str | None, limit: int) -> dict[str, Any]:
    get(job_id, user)
    query: dict[str, Any] = {"job_id": job_id}
    if level:
        order = ["DEBUG", "INFO", "WARNING", "ERROR"]
        query["level"] = {"$in": order[order.index(level.upper()) :]}
    lines = list(
        db().logs.find(query).sort([("timestamp", ASCENDING), ("_id", ASCENDING)]).limit(limit)
    )
    return {"logs": lines}
