"""The job state machine (one table, used by API and workers) and the jobs repository."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, TypeVar, cast

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared import usage
from shared.events import OutboxEntry
from shared.files import JobFiles
from shared.jobspec import AutoDecision, FirstPage, browser_reasons, needs_browser_login
from shared.usage import UsageStore

PENDING = "pending"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})

ENGINES = ("auto", "scrapy", "playwright", "spider")
PRIORITY_NAMES = {"low": 2, "normal": 5, "high": 8}
DEFAULT_PRIORITY = PRIORITY_NAMES["normal"]

# action -> (states it may start from, state it leads to). Every status change in the
# service goes through `transition`, so this table is the whole state machine.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "claim": (frozenset({PENDING}), RUNNING),  # a worker starts the job
    "complete": (frozenset({RUNNING}), COMPLETED),
    "fail": (frozenset({RUNNING}), FAILED),
    "cancel": (frozenset({PENDING, RUNNING}), CANCELLED),
    "retry": (frozenset({FAILED, CANCELLED}), PENDING),
    "reset": (frozenset({COMPLETED, FAILED, CANCELLED}), PENDING),
    "handoff": (frozenset({RUNNING}), PENDING),  # auto: static engine passes to playwright
    "requeue": (frozenset({RUNNING}), PENDING),  # reconciler: the worker running it died
    "reclaim": (frozenset({RUNNING}), RUNNING),  # re-delivered task takes over from a dead worker
}


def sources(action: str) -> frozenset[str]:
    """States from which `action` is allowed."""
    return TRANSITIONS[action][0]


def target(action: str) -> str:
    """State that `action` leads to."""
    return TRANSITIONS[action][1]


def allowed(action: str, status: str) -> bool:
    """Whether a job in `status` may undergo `action`."""
    return status in sources(action)


def now() -> datetime:
    """The current time, UTC, at millisecond precision (what MongoDB stores)."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def new_id() -> str:
    """A new job id: 32 hex characters."""
    return uuid.uuid4().hex


def normalize_priority(value: str | int | None) -> int:
    """low/normal/high or 0-9 (9 highest) to an integer 0-9."""
    if value is None:
        return DEFAULT_PRIORITY
    if isinstance(value, str):
        if value in PRIORITY_NAMES:
            return PRIORITY_NAMES[value]
        raise ValueError(f"unknown priority {value!r}")
    if isinstance(value, bool) or not 0 <= int(value) <= 9:
        raise ValueError("priority must be low, normal, high or an integer 0-9")
    return int(value)


class JobError(TypedDict, total=False):
    """Why a job failed or was cancelled (not by its owner): `job.error` and the event's."""

    type: str  # e.g. worker_lost, timeout, quota_exceeded, action_failed, cancelled
    message: str
    url: str  # the page it concerns, when one does


class JobDoc(TypedDict, total=False):
    """A document of the `jobs` collection as stored (the wire shape is api/schemas.py's).
    Partial: a projection, or a job read before a field existed, lacks some of them."""

    _id: str
    owner_id: str
    url: str
    urls: list[str]
    engine: str  # auto | scrapy | playwright: what the user asked for
    engine_used: str | None  # what ran it
    status: str  # one of STATUSES
    priority: int
    selectors: dict[str, Any]  # the spec's selectors (shared/selectors.py reads them)
    config: dict[str, Any]  # the spec's config as sent; shared/jobspec.py resolves it
    webhook_url: str | None
    progress: int
    items_scraped: int
    items_failed: int
    pages_crawled: int
    attempts: int
    run: int  # +1 on each retry or reset
    epoch: int  # +1 on each reset: items of earlier runs are purged
    run_id: str | None  # the run that owns the job while it runs
    error: JobError | None
    warnings: list[str]  # what went wrong on some pages of a run that still completed
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    queue: str
    resend_at: datetime
    resends: int
    unsent: bool
    seq: int  # shared/counters.py
    schedule_id: str
    schedule_run_id: str | None
    heartbeat_at: datetime
    worker: str
    takeovers: int
    unsettled: bool  # cancelled under a run whose final figures are still to come
    outbox: dict[str, OutboxEntry]  # events written with the state: shared/outbox.py
    outbox_pending: int
    auto_decision: AutoDecision  # auto: the engine chosen and why
    auto_probe: FirstPage  # auto: what the static engine's first page gave
    spider: dict[str, Any]  # engine spider: {project, version, name, args, settings}
    session: str | None  # sealed: the browser login's session, handed to Scrapy
    browser_seconds: float  # the running run's browser time so far (metered when it ends)
    usage: dict[str, float]  # what the job was metered: {jobs, pages, items, browser_seconds}
    usage_items: int  # its stored items already metered (this epoch): shared/usage.ITEMS_METERED
    events_from: str  # the event id a retried or reset run's stream starts after


_Doc = TypeVar("_Doc", bound=Mapping[str, Any])  # a job, or the fields of one

CAS_ATTEMPTS = 50  # re-reads of a job whose counted figures moved under a transition


def resend_at(moment: datetime, resends: int = 0) -> datetime:
    """When a job that entered `pending` at `moment` is sent again if nobody took it: its
    message may sit with a worker that was killed (Redis keeps such a message for its
    visibility timeout, an hour and more). Doubling after each resend, so a long backlog
    adds few duplicates; a job sent twice runs once."""
    from shared.settings import get_settings

    seconds = get_settings().resend_after_seconds * 2 ** min(resends, 6)
    return moment + timedelta(seconds=seconds)


def apply_update(doc: _Doc, update: dict[str, Any]) -> _Doc:
    """The document that `update` ($set/$inc of top-level fields) makes of `doc`."""
    after: dict[str, Any] = dict(doc)
    for field, value in update.get("$set", {}).items():
        if "." in field:  # one level down (an outbox event): shared/outbox.py
            top, sub = field.split(".", 1)
            after[top] = {**(after.get(top) or {}), sub: value}
        else:
            after[field] = value
    for field, n in update.get("$inc", {}).items():
        if "." in field:  # a job's `usage.*` (shared/usage.py)
            top, sub = field.split(".", 1)
            inner = dict(after.get(top) or {})
            inner[sub] = (inner.get(sub) or 0) + n
            after[top] = inner
        else:
            after[field] = (after.get(field) or 0) + n
    return cast(_Doc, after)


def queue_for(engine: str, config: Mapping[str, Any] | None = None) -> str:
    """The Celery queue that first receives a job of `engine` (auto starts on the cheap one,
    unless its `config` asks for what only the browser does: shared/jobspec.browser_reasons);
    a job that logs in starts in the browser, whatever its engine (workers/login_flow.py)."""
    if engine == "spider":
        return "spiders"
    if engine == "playwright" or needs_browser_login(config):
        return "playwright"
    if engine == "auto" and browser_reasons(config or {}):
        return "playwright"
    return "scrapy"


class JobRepository:
    """Reads and writes job documents; status changes only through `transition`.

    Every write that changes what shared/counters.py counts (status, and the figures of a job
    that is not running) is a conditional update pinned on the document as read, followed by
    the exact counter delta. (`find_one_and_update` would do it in one round trip, but the
    embedded SecantusDB scans the whole collection for every findAndModify.)
    """

    def __init__(self, db: Database):
        from shared.counters import JobCounters  # counters know the states defined here

        self.db = db
        self.jobs = db.jobs
        self.counters = JobCounters(db)
        self.usage = UsageStore(db)

    def create(
        self,
        owner_id: str,
        spec: dict[str, Any],
        job_id: str | None = None,
        schedule_id: str | None = None,
        schedule_run_id: str | None = None,
        **initial: Any,
    ) -> JobDoc:
        """Insert a pending job from a POST /jobs body; a scheduled job names its schedule
        and run (and its id was chosen with the run, so creating it twice is a duplicate).
        `initial` fields override the defaults (e.g. the queue `auto` learned for the site)."""
        created = now()
        doc: JobDoc = {
            "_id": job_id or new_id(),
            "owner_id": owner_id,
            "url": spec["url"],
            "urls": spec.get("urls") or [spec["url"]],
            "engine": spec.get("engine", "auto"),
            "engine_used": None,
            "status": PENDING,
            "priority": normalize_priority(spec.get("priority")),
            "selectors": spec.get("selectors") or {},
            "config": spec.get("config") or {},
            "webhook_url": spec.get("webhook_url"),
            "progress": 0,
            "items_scraped": 0,
            "items_failed": 0,
            "pages_crawled": 0,
            "attempts": 1,
            "run": 1,  # +1 on each retry or reset: events carry it, `wait` follows the newest
            "epoch": 0,
            "run_id": None,
            "error": None,
            "created_at": created,
            "updated_at": created,
            "started_at": None,
            "completed_at": None,
            "duration_seconds": None,
            "queue": queue_for(spec.get("engine", "auto"), spec.get("config")),
            "resend_at": resend_at(created),
        }
        if spec.get("spider"):
            doc["spider"] = spec["spider"]  # engine "spider": {project, version, name, args, …}
        if schedule_id is not None:
            doc["schedule_id"] = schedule_id
            doc["schedule_run_id"] = schedule_run_id
        doc.update(cast(JobDoc, initial))
        doc["seq"] = self.counters.created(doc)
        try:
            self.jobs.insert_one(doc)
        except DuplicateKeyError:
            self.counters.removed({**doc, "items_scraped": 0, "pages_crawled": 0}, created)
            raise
        self.usage.add(owner_id, created, {"jobs": 1})
        return doc

    def get(self, job_id: str) -> JobDoc | None:
        return self.jobs.find_one({"_id": job_id})

    def transition(
        self,
        job_id: str,
        action: str,
        extra_filter: dict[str, Any] | None = None,
        current: JobDoc | None = None,
        **fields: Any,
    ) -> JobDoc | None:
        """Apply `action` atomically; the updated job, or None when its status (or
        `extra_filter`) forbids it. `current`: the job as the caller last read it."""
        from shared.counters import pins

        doc = current if current is not None else self.get(job_id)
        for _ in range(CAS_ATTEMPTS):
            if doc is None or doc["status"] not in sources(action):
                return None
            update = _update_for(action, fields)
            pinned = pins(doc, target(action), update["$set"])
            query = {"_id": job_id, "status": doc["status"], **pinned, **(extra_filter or {})}
            metered = _metered(doc, update)
            if self.jobs.update_one(query, update).matched_count:
                after = apply_update(doc, update)
                self.counters.moved(doc, after)
                self.usage.add(doc.get("owner_id"), update["$set"]["updated_at"], metered)
                return after
            fresh = self.get(job_id)
            if fresh is not None and _same_state(fresh, doc, pinned):
                return None  # unchanged where it counts: `extra_filter` refused it
            doc = fresh
        raise RuntimeError(f"job {job_id}: {action} lost {CAS_ATTEMPTS} races in a row")

    def finish(
        self,
        job_id: str,
        action: str,
        run_id: str | None = None,
        started_at: datetime | None = None,
        current: JobDoc | None = None,
        extra_filter: dict[str, Any] | None = None,
        **fields: Any,
    ) -> JobDoc | None:
        """complete/fail/cancel a job, stamping completed_at and duration_seconds; with
        `run_id`, only while that run still owns the job (and `extra_filter` holds)."""
        end = now()
        fields.setdefault("completed_at", end)
        if current is None:
            current = self.get(job_id)
        if started_at is None and current is not None:
            started_at = current.get("started_at")
        if started_at is not None:
            if started_at.tzinfo is None:
                started_at = started_at.replace(tzinfo=UTC)
            fields.setdefault("duration_seconds", round((end - started_at).total_seconds(), 3))
        extra = {**(extra_filter or {}), **({"run_id": run_id} if run_id is not None else {})}
        return self.transition(
            job_id, action, extra_filter=extra or None, current=current, **fields
        )

    def store_counters(
        self,
        job_id: str,
        run_id: str | None,
        counters: dict[str, Any],
        event: dict[str, Any] | None = None,
    ) -> bool:
        """A run's final figures on the job it still owns but that left `running` under it
        (a user cancelled meanwhile: `unsettled`); with `run_id` None, whoever owns it (the
        reconciler settling a cancelled job whose run died first). `event`: outbox fields
        written with them (shared/outbox.py). False when the run no longer owns the job or
        the other one settled it first (so only one of them tells the user)."""
        from shared.counters import pins

        doc = self.get(job_id)
        for _ in range(CAS_ATTEMPTS):
            if doc is None or (run_id is not None and doc.get("run_id") != run_id):
                return False
            if not doc.get("unsettled"):
                return False
            pinned = pins(doc, doc["status"], counters)
            query = {
                "_id": job_id,
                "run_id": doc.get("run_id"),
                "status": doc["status"],
                "unsettled": True,
                **pinned,
            }
            update: dict[str, Any] = {
                "$set": {**counters, **(event or {})},
                "$unset": {"unsettled": ""},
            }
            _count_events(update)
            metered = _metered(doc, update)
            if self.jobs.update_one(query, update).matched_count:
                after = apply_update(doc, update)
                after.pop("unsettled", None)
                self.counters.moved(doc, after)
                self.usage.add(doc.get("owner_id"), now(), metered)
                return True
            doc = self.get(job_id)
        raise RuntimeError(f"job {job_id}: final counters lost {CAS_ATTEMPTS} races in a row")

    def status_of(self, job_id: str) -> str | None:
        doc = self.jobs.find_one({"_id": job_id}, {"status": 1})
        return doc["status"] if doc else None

    def delete(self, job_id: str, active: bool = False, current: JobDoc | None = None) -> None:
        """Delete the job, its items, its log and its files. `active`: a worker may still be
        writing for it (it was pending, running or just cancelled), so leave a tombstone that
        the reconciler uses to purge whatever that worker writes afterwards."""
        if active:
            self.db.deleted_jobs.update_one(
                {"_id": job_id}, {"$set": {"deleted_at": now()}}, upsert=True
            )
        self.remove(job_id, current)
        self.db.results.delete_many({"job_id": job_id})
        self.db.logs.delete_many({"job_id": job_id})
        JobFiles(self.db).delete_for_job(job_id)

    def remove(self, job_id: str, current: JobDoc | None = None) -> bool:
        """Delete the job document (not its items) and count it out; False when it is gone."""
        from shared.counters import pins

        doc = current if current is not None else self.get(job_id)
        for _ in range(CAS_ATTEMPTS):
            if doc is None:
                return False
            pinned = pins(doc, doc["status"], {})
            if self.jobs.delete_one(
                {"_id": job_id, "status": doc["status"], **pinned}
            ).deleted_count:
                self.counters.removed(doc, now())
                return True
            doc = self.get(job_id)
        raise RuntimeError(f"job {job_id}: delete lost {CAS_ATTEMPTS} races in a row")

    def purge_deleted(self, horizon_seconds: float) -> int:
        """Remove items and log lines written for recently deleted jobs after their deletion
        (by a worker that had not yet noticed); forget tombstones older than the horizon."""
        cutoff = now() - timedelta(seconds=horizon_seconds)
        self.db.deleted_jobs.delete_many({"deleted_at": {"$lt": cutoff}})
        purged = 0
        for tomb in self.db.deleted_jobs.find({}, {"_id": 1}):
            purged += self.db.results.delete_many({"job_id": tomb["_id"]}).deleted_count
            self.db.logs.delete_many({"job_id": tomb["_id"]})
            JobFiles(self.db).delete_for_job(tomb["_id"])
        return purged


def _update_for(action: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The update document of `action` with the caller's `fields`."""
    for name in fields:
        # top-level, but for outbox events written with the state (shared/outbox.py)
        assert "." not in name or name.startswith("outbox."), f"top-level fields only: {name}"
    update: dict[str, Any] = {"$set": {"status": target(action), "updated_at": now(), **fields}}
    if action in {"claim", "reclaim"}:
        update["$set"].setdefault("started_at", now())
        update["$set"].setdefault("heartbeat_at", now())
        update["$set"].setdefault("run_id", new_id())  # this run owns the job from now on
    if target(action) == PENDING:
        update["$set"]["resend_at"] = resend_at(update["$set"]["updated_at"])
        update["$set"]["resends"] = 0
    if action in {"requeue", "handoff", "retry"}:
        update["$set"]["run_id"] = None  # the run that had it may no longer write
    if action in {"retry", "requeue", "reclaim"}:
        update["$inc"] = {"attempts": 1}  # a lost worker's job runs again: a new attempt
    if action == "reset":
        update["$set"]["run_id"] = None
        update["$inc"] = {"epoch": 1}  # items of earlier runs are purged, never mixed in
    if action in {"retry", "reset"}:
        update["$inc"]["run"] = 1  # the user started it again: a new run of events
    _count_events(update)
    return update


def _metered(doc: JobDoc, update: dict[str, Any]) -> dict[str, float]:
    """The usage a transition meters (shared/usage.py), added to its own write: the job's
    `usage.*` go up with it, so the job carries what it was metered."""
    after = apply_update(doc, update)
    delta = usage.meter(doc, after)
    inc, sets = usage.job_update(doc, after, delta)
    if inc:
        update.setdefault("$inc", {}).update(inc)
    if sets:
        update["$set"].update(sets)
    return delta


def _count_events(update: dict[str, Any]) -> None:
    """Outbox events written with a state (shared/outbox.py) count up `outbox_pending`."""
    written = sum(1 for name in update["$set"] if name.startswith("outbox."))
    if written:
        update.setdefault("$inc", {})["outbox_pending"] = written


def _same_state(fresh: JobDoc, read: JobDoc, pinned: dict[str, Any]) -> bool:
    """Whether a job is where a transition found it, in status and pinned figures."""
    return fresh["status"] == read["status"] and all(
        fresh.get(field) == value for field, value in pinned.items()
    )


WRITER_HORIZON = timedelta(minutes=15)  # longer than a stopped run takes to notice and end


def may_have_writer(job: JobDoc | None) -> bool:
    """Whether a run may still write items for `job` (so a delete leaves a tombstone): it is
    running, or a run was cancelled under it a moment ago. A pending job has no run: a
    cancel or delete that wins against the claim leaves nothing to claim."""
    if job is None:
        return False
    if job["status"] == RUNNING:
        return True
    ended = job.get("completed_at")
    return (
        job["status"] == CANCELLED
        and job.get("run_id") is not None
        and (ended is None or now() - ended < WRITER_HORIZON)
    )


def mark_unsent(db: Database, job_id: str) -> None:
    """A stored job whose task could not be sent (Redis down): the reconciler sends it."""
    try:
        db.jobs.update_one({"_id": job_id, "status": PENDING}, {"$set": {"unsent": True}})
    except Exception:  # the store is down too: the count check of the reconciler finds it
        logging.getLogger(__name__).warning("job %s: could not mark it unsent", job_id)


def log(db: Database, job_id: str, level: str, message: str, run_id: str | None = None) -> None:
    """Append one line to a job's log (shown by GET /jobs/{id}/logs); `run_id`: the run that
    wrote it, so a run that loses its job can take its lines back (ItemSink.purge)."""
    db.logs.insert_one(
        {"job_id": job_id, "run_id": run_id, "timestamp": now(), "level": level, "message": message}
    )
