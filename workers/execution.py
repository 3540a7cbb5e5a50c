"""Running one job in a worker: claim it, run its engine into the sink, record the outcome.

The process's engines and event log live in workers/engines.py; maintenance (re-queueing,
re-sending, purging) in workers/reconcile.py; webhook sending in workers/delivery.py.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from scrapers.engine import CrawlResult
from scrapers.failures import INTERNAL
from scrapers.proxies import Rotation
from shared import accounts, events, items, jobs, outbox, tasks, usage
from shared import db as dbmod
from shared.auto_memory import AutoMemory
from shared.eggs import Egg, EggStore
from shared.files import JobFiles
from shared.jobs import JobDoc, JobError, JobRepository
from shared.jobspec import JobSpec
from shared.proxies import ProxyRepository
from shared.results import ItemSink
from shared.settings import SettingsError, get_settings
from shared.vault import Vault, VaultError
from workers import auto_flow, delivery, login_flow, shutdown
from workers.engines import engine_for, event_log

logger = logging.getLogger(__name__)


def send(job: JobDoc, queue: str, resume: bool = False) -> None:
    """Enqueue the scrape task of `job` on `queue` with the job's priority; `resume` (a job
    whose worker died) goes first: it was already running, it must not wait behind the queue."""
    from workers import celery

    options = tasks.scrape_options({**job, "queue": queue})
    if resume:
        options["priority"] = tasks.celery_priority(9)
    celery.send_task(tasks.SCRAPE, **options)


def give_up(repo: JobRepository, job: JobDoc, stale: datetime, limit: int) -> JobDoc | None:
    """A running job whose worker died (its heartbeat is older than `stale`) after it was
    taken over `limit` times already (MAX_JOB_ATTEMPTS): a poison job, failed `worker_lost`
    with its stored items counted, and its job.failed in the outbox. The failed job, or None
    when it moved meanwhile (its worker was alive after all, or a user cancelled it)."""
    job_id = job["_id"]
    deaths = int(job.get("takeovers") or 0) + 1
    error = {
        "type": "worker_lost",
        "message": f"its worker died {deaths} times while running it (taken over "
        f"{deaths - 1} times, MAX_JOB_ATTEMPTS={limit}); retry it to run it again",
    }
    stored = items.count(repo.db, job_id)
    data = {
        **events.counters_of({**job, "status": jobs.FAILED, "items_scraped": stored}),
        "error": error,
        **events.about(job),
    }
    done = repo.finish(
        job_id,
        "fail",
        current=job,
        extra_filter={"heartbeat_at": {"$lt": stale}},
        error=error,
        items_scraped=stored,
        **outbox.fields(events.FAILED, data),
    )
    if done is not None:
        jobs.log(repo.db, job_id, "ERROR", f"failed: {error['message']}")
    return done


def _take_over(
    repo: JobRepository, current: JobDoc, stale: datetime, worker: str, fields: dict[str, Any]
) -> JobDoc | None:
    """A re-delivered task takes over a running job whose worker died, or gives it up when
    that has happened MAX_JOB_ATTEMPTS times already (then publishes its job.failed)."""
    job_id, limit = current["_id"], get_settings().max_job_attempts
    if int(current.get("takeovers") or 0) >= limit:
        failed = give_up(repo, current, stale, limit)
        if failed is not None:
            delivery.publish(job_id, failed)
        return None
    takeovers = int(current.get("takeovers") or 0) + 1
    job = repo.transition(
        job_id,
        "reclaim",
        extra_filter={"heartbeat_at": {"$lt": stale}},
        current=current,
        takeovers=takeovers,
        **fields,
    )
    if job is not None:
        message = f"taken over from a lost worker by {worker} ({takeovers} of {limit})"
        jobs.log(repo.db, job_id, "WARNING", message)
    return job


def _claim(
    repo: JobRepository, job_id: str, queue: str, hostname: str, stale_after: int
) -> tuple[JobDoc | None, int]:
    """(job, 0) when claimed; (None, seconds) to look again later; (None, 0) to drop the task."""
    worker = f"{hostname}:{os.getpid()}"
    engine_used = tasks.engine_of_queue(queue)
    fields = {"worker": worker, "queue": queue, "engine_used": engine_used}
    current = repo.get(job_id)
    if (
        current is not None
        and current["status"] == jobs.PENDING
        and accounts.is_deactivated(repo.db, current.get("owner_id"))
    ):
        _cancel_for_inactive_owner(repo, current)  # queued before the account was deactivated
        return None, 0
    if current is not None and current["status"] == jobs.PENDING:
        wait = _over_concurrency(repo, current)
        if wait:
            return None, wait
    job = repo.transition(job_id, "claim", extra_filter={"queue": queue}, current=current, **fields)
    if job is not None:
        return job, 0
    current = repo.get(job_id)
    if current is None or current["status"] != jobs.RUNNING or current.get("queue") != queue:
        return None, 0  # deleted, cancelled, finished, or now someone else's queue
    # A running job whose heartbeat is older than this has lost its worker.
    stale = jobs.now() - timedelta(seconds=stale_after)
    heartbeat = current.get("heartbeat_at")
    if heartbeat is not None and heartbeat.replace(tzinfo=stale.tzinfo) < stale:
        job = _take_over(repo, current, stale, worker, fields)
        if job is not None:
            return job, 0
        current = repo.get(job_id)
        if current is None or current["status"] != jobs.RUNNING:
            return None, 0  # given up (a poison job), or settled meanwhile
    heartbeat = current.get("heartbeat_at") or jobs.now()
    age = (jobs.now() - heartbeat).total_seconds()
    return None, max(1, int(stale_after - age) + 1)


def _over_concurrency(repo: JobRepository, job: JobDoc) -> int:
    """Seconds to wait before looking again when the owner's concurrent-jobs quota holds this
    job back (it stays `pending`); 0 to go on. In order: a job waits while an older pending job
    of its owner waits in the same queue. The task comes back after QUOTA_WAIT_SECONDS (a
    Celery countdown: no worker slot is held meanwhile), so other users' jobs run."""
    owner = job.get("owner_id")
    settings = get_settings()
    user = repo.db.users.find_one({"_id": owner}, {"quotas": 1}) if owner else None
    limit = usage.quotas_of(user, settings).concurrent_jobs
    if limit is None:
        return 0
    wait = max(1, round(settings.quota_wait_seconds))
    if usage.running_jobs(repo.db, str(owner)) >= limit:
        return wait
    older = repo.db.jobs.find_one(
        {
            "owner_id": owner,
            "status": jobs.PENDING,
            "queue": job.get("queue"),
            "seq": {"$lt": job.get("seq") or 0},
        },
        {"_id": 1},
    )
    return wait if older is not None else 0


def _cancel_for_inactive_owner(repo: JobRepository, job: JobDoc) -> None:
    """Cancel, not start, a pending job whose owner's account is deactivated."""
    error = JobError(**accounts.DEACTIVATED_ERROR)
    data = {
        **events.counters_of({**job, "status": jobs.CANCELLED}),
        "error": error,
        **events.about(job),
    }
    done = repo.transition(
        job["_id"],
        "cancel",
        extra_filter={"status": jobs.PENDING},
        current=job,
        completed_at=jobs.now(),
        error=error,
        **outbox.fields(events.CANCELLED, data),
    )
    if done is None:
        return  # claimed or cancelled meanwhile
    jobs.log(repo.db, job["_id"], "INFO", f"cancelled, not started: {error['message']}")
    delivery.publish(job["_id"], done)


def execute(job_id: str, queue: str, hostname: str = "worker") -> int:
    """Run job `job_id` taken from `queue`. Returns seconds to retry after, or 0 when done."""
    settings = get_settings()
    database = dbmod.database(settings)
    repo = JobRepository(database)
    job, wait = _claim(repo, job_id, queue, hostname, settings.job_stale_seconds)
    if job is None:
        if not wait:
            logger.info("job %s: nothing to do (already claimed, finished or gone)", job_id)
        return wait

    engine_name = tasks.engine_of_queue(queue)
    max_items = settings.max_items_per_job
    if settings.max_stored_items_per_user:
        # checked as the job starts: jobs of one user running at once share what is left
        room = settings.max_stored_items_per_user - repo.counters.stored_items(job["owner_id"])
        if room <= 0:
            return _refuse_over_quota(repo, job, settings.max_stored_items_per_user)
        max_items = min(max_items, room)
    memory = AutoMemory.from_settings(database, settings)
    auto_plan = auto_flow.plan(job, engine_name, memory)
    if auto_plan.route is not None:  # auto, learned: this site needs the other engine
        auto_flow.route(repo, job, auto_plan, send, _logger(repo, job))
        return 0
    egg = None
    if engine_name == "spider":
        egg = _egg_of(database, job)
        if egg is None:
            return _fail_before_run(repo, job, _NO_EGG)
    try:  # the job's secrets in the clear, for the engines only (never stored or logged)
        vault = Vault.from_settings(settings)
        opened = {**job, "config": vault.open_config(job.get("config") or {})}
    except (VaultError, SettingsError) as exc:
        return _fail_before_run(repo, job, {"type": "secrets_unavailable", "message": str(exc)})
    spec = JobSpec.from_job(
        opened,
        max_items=max_items,
        max_page_bytes=settings.max_page_bytes,
        max_items_per_page=settings.max_items_per_page,
        max_field_bytes=settings.max_field_bytes,
        user_agent=settings.user_agent,
    )
    try:
        prepared = login_flow.prepare(
            repo, job, spec, queue, vault, _browser_login, send, _logger(repo, job)
        )
    except Exception as exc:  # a browser that would not start, a session that will not open
        logger.exception("job %s: its login could not run", job_id)
        kind = "secrets_unavailable" if isinstance(exc, VaultError) else "browser_error"
        message = "".join(traceback.format_exception_only(exc)).strip().splitlines()[0]
        prepared = login_flow.Prepared(error={"type": kind, "message": f"login: {message}"})
    if prepared.handed:
        return 0
    if prepared.error is not None:
        return _fail_before_run(repo, job, prepared.error)
    owner = job.get("owner_id")
    quotas = usage.quotas_of(database.users.find_one({"_id": owner}, {"quotas": 1}), settings)
    budget = _budget(database, owner, quotas)
    if budget.exhausted is not None:  # e.g. a schedule's run after the quota was used up
        return _fail_before_run(repo, job, budget.exhausted)
    capped = budget.pages is not None and budget.pages < int(spec.config["max_pages"])
    if capped and budget.pages is not None:
        spec.config["max_pages"] = max(1, budget.pages)  # the engine stops exactly there
    started = {
        "status": jobs.RUNNING,
        "attempt": job["attempts"],
        "engine": engine_name,
        **events.about(job),
    }
    written = outbox.add(database, job, events.STARTED, started, run_id=job.get("run_id"))
    # events still in the outbox (Redis down): progress waits behind them, so a job's events
    # keep their order; the reconciler publishes them once Redis is back
    left = [delivery.publish(job_id, written) if written is not None else 0]

    def progress(counters: dict[str, Any]) -> None:
        if left[0]:
            left[0] = delivery.publish(job_id)
        if not left[0]:
            shown = {k: v for k, v in counters.items() if k != "browser_seconds"}
            data = {**shown, "status": jobs.RUNNING, **events.about(job)}
            event_log().append(job_id, owner, events.PROGRESS, data)

    sink = ItemSink(
        database,
        job_id,
        max_pages=int(spec.config["max_pages"]),
        batch_size=settings.item_batch_size,
        interval=settings.progress_interval_seconds,
        max_items=max_items,
        run_id=job.get("run_id"),
        epoch=int(job.get("epoch") or 0),
        count_existing=_has_earlier_items(job),
        owner_id=owner,
        max_files=settings.max_files_per_job,
        on_progress=progress,
        on_log=lambda lines: event_log().append_many(
            job_id,
            owner,
            [(events.LOG, {"level": line["level"], "message": line["message"]}) for line in lines],
        ),
    )
    if budget.browser_seconds is not None:
        sink.browser_budget = budget.browser_seconds
    # written at once, not with the sink's next flush: a worker that dies in the first half
    # second must still leave this line
    jobs.log(
        repo.db,
        job_id,
        "INFO",
        f"started on {engine_name} by {job.get('worker')} (attempt {job['attempts']})",
        job.get("run_id"),
    )
    proxy = str(spec.config.get("proxy") or "none")
    rotation = Rotation(
        proxy,
        ProxyRepository.from_settings(database, settings) if proxy == "pool" else None,
        max_attempts=settings.proxy_max_attempts,
    )
    # the engine stops between pages once this worker's shutdown is older than the grace
    guard = shutdown.GraceStop(sink, settings.worker_shutdown_grace_seconds)
    ctx = replace(auto_plan.context(rotation), session=prepared.session)
    if egg is not None:
        ctx = replace(ctx, egg=egg.data)
        sink.log(
            "INFO", f"project {egg.project} version {egg.version}, spider {job['spider']['name']}"
        )
    try:
        engine = engine_for(engine_name)
        result: CrawlResult = engine.run(spec, guard, ctx)
    except Exception as exc:  # an engine bug must fail the job, not leave it running
        logger.exception("job %s: engine %s crashed", job_id, engine_name)
        sink.log("ERROR", "engine error: " + "".join(traceback.format_exception_only(exc)).strip())
        result = CrawlResult(error=dict(INTERNAL))
    counters = sink.close()
    current = sink.check_owner()
    if sink.lost.is_set():
        # cancelled and retried, re-queued, reset or deleted while this run went on: the job
        # is no longer ours; leave it to its owner and take back what no longer belongs to it
        purged = sink.purge(current)
        logger.info("job %s: run %s lost the job; %d items purged", job_id, sink.run_id, purged)
        return 0
    # stopped for this worker's shutdown (Scrapy names the stop "cancelled" or "stopped",
    # whichever of its checks saw it first): hand back, unless the crawl ended on its own terms
    stopped_for_shutdown = guard.tripped and not (
        result.error or result.needs_javascript or result.finish_reason == "item_limit"
    )
    if (
        stopped_for_shutdown
        and not sink.cancelled.is_set()
        and _hand_back(repo, job, counters, queue)
    ):
        return 0
    if sink.quota is None and capped and counters["pages_crawled"] >= (budget.pages or 0):
        sink.quota = dict(_PAGES_USED_UP)
    if sink.quota is not None and not result.error:
        result = replace(result, error=sink.quota)
    _record(repo, job, result, counters, sink, engine_name, memory)
    return 0


_PAGES_USED_UP = {
    "type": "quota_exceeded",
    "message": "the account's pages this month are used up (pages_per_month); the items so "
    "far are kept",
}


@dataclass(frozen=True)
class _Budget:
    """What the owner's monthly quotas leave to a run as it starts (None: no quota)."""

    pages: int | None
    browser_seconds: float | None
    exhausted: dict[str, str] | None  # a quota already used up: the run stops at once


def _budget(database: Any, owner: Any, quotas: usage.Quotas) -> _Budget:
    if quotas.pages_per_month is None and quotas.browser_minutes_per_month is None:
        return _Budget(None, None, None)
    used = usage.UsageStore(database).month(str(owner), jobs.now())
    pages = browser = None
    exhausted = None
    if quotas.pages_per_month is not None:
        pages = int(quotas.pages_per_month - used["pages"])
        if pages <= 0:
            exhausted = dict(_PAGES_USED_UP)
    if quotas.browser_minutes_per_month is not None:
        browser = quotas.browser_minutes_per_month * 60 - float(used["browser_seconds"])
        if browser <= 0:
            exhausted = {
                "type": "quota_exceeded",
                "message": "the account's browser minutes this month are used up "
                "(browser_minutes_per_month)",
            }
    return _Budget(pages, browser, exhausted)


def _logger(repo: JobRepository, job: JobDoc) -> Callable[[str, str], None]:
    return lambda level, message: jobs.log(repo.db, job["_id"], level, message, job.get("run_id"))


def _browser_login(spec: JobSpec, sink: Any, kept: Any, start: Any) -> Any:
    """The browser engine's login (scrapers/login.py) on this process's warm Chromium."""
    from scrapers.login import browser_login
    from scrapers.playwright_engine import PlaywrightEngine

    engine = engine_for("playwright")
    assert isinstance(engine, PlaywrightEngine)
    return browser_login(engine, spec, sink, kept, start)


def _refuse_over_quota(repo: JobRepository, job: JobDoc, quota: int) -> int:
    """Fail a job whose owner has no room left under MAX_STORED_ITEMS_PER_USER."""
    error = {
        "type": "quota_exceeded",
        "message": f"the account already stores {quota} items (MAX_STORED_ITEMS_PER_USER); "
        "delete or reset jobs to make room",
    }
    return _fail_before_run(repo, job, error)


def _fail_before_run(repo: JobRepository, job: JobDoc, error: dict[str, str]) -> int:
    """Fail a claimed job before its crawl started (no room, a failed login, no egg)."""
    data = {**events.counters_of({**job, "status": jobs.FAILED}), "error": error}
    event = outbox.fields(events.FAILED, {**data, **events.about(job)})
    done = repo.finish(job["_id"], "fail", job.get("run_id"), current=job, error=error, **event)
    if done is not None:
        jobs.log(repo.db, job["_id"], "ERROR", f"failed: {error['message']}", job.get("run_id"))
        delivery.publish(job["_id"], done)
    return 0


_NO_EGG = {
    "type": "spider_not_found",
    "message": "the job's project or version is no longer deployed (deleted since it was "
    "submitted); deploy it again and retry the job",
}


def _egg_of(database: Any, job: JobDoc) -> Egg | None:
    """The egg a spider job runs: its version, or the latest when it names none (Scrapyd)."""
    spider = job.get("spider") or {}
    if not spider.get("project"):
        return None
    store = EggStore(database)
    return store.get(str(job["owner_id"]), spider["project"], spider.get("version") or None)


def _hand_back(repo: JobRepository, job: JobDoc, counters: dict[str, Any], queue: str) -> bool:
    """Stopped for this worker's shutdown: back to pending with its task first in line, so
    another worker resumes it now. The items so far stay (a re-run adds none twice)."""
    moved = repo.transition(
        job["_id"], "requeue", extra_filter={"run_id": job.get("run_id")}, **counters
    )
    if moved is None:
        return False  # cancelled at the last moment: recorded as such by the caller
    jobs.log(
        repo.db,
        job["_id"],
        "WARNING",
        f"handed back by {job.get('worker')}: the worker is shutting down "
        f"({counters['pages_crawled']} pages, {counters['items_scraped']} items so far); re-queued",
    )
    send(moved, queue, resume=True)
    logger.info("job %s: handed back for shutdown", job["_id"])
    return True


def _has_earlier_items(job: JobDoc) -> bool:
    """Whether items of an earlier run may be stored (else the sink needn't count them)."""
    return int(job.get("attempts") or 1) > 1 or bool(job.get("items_scraped"))


def _final_counters(repo: JobRepository, job: JobDoc, counters: dict[str, Any]) -> None:
    """The job's final item count is what it stores, counted as it ends (not this run's
    tally: a write that timed out may have landed, and after a retry, take-over or reset a
    run that lost the job may have stored items after this run counted)."""
    epoch = int(job.get("epoch") or 0)
    if epoch:
        repo.db.results.delete_many({"job_id": job["_id"], "epoch": {"$ne": epoch}})
        JobFiles(repo.db).delete_for_job(job["_id"], keep_epoch=epoch)
    if epoch or _has_earlier_items(job):
        counters["items_scraped"] = items.renumber(repo.db, job["_id"])
    else:
        counters["items_scraped"] = items.count(repo.db, job["_id"])


def _record(
    repo: JobRepository,
    job: JobDoc,
    result: CrawlResult,
    counters: dict[str, Any],
    sink: ItemSink,
    engine_name: str,
    memory: AutoMemory,
) -> None:
    job_id, run_id = job["_id"], job.get("run_id")
    log = _logger(repo, job)
    moved, auto_fields = auto_flow.after_run(
        repo, job, result, counters, engine_name, memory, send, log
    )
    if moved:
        return
    for warning in result.warnings:
        log("WARNING", warning)
    extra = {**auto_fields, "warnings": result.warnings}  # stored with the final counters
    _final_counters(repo, job, counters)

    def cancelled() -> None:
        # a user cancelled while this run went on: its final counters with the last event
        # (unless the reconciler settled the job first, having found this run silent)
        data = {**counters, "status": jobs.CANCELLED, **events.about(job)}
        if run_id is not None and repo.store_counters(
            job_id, run_id, {**counters, **extra}, outbox.fields(events.CANCELLED, data)
        ):
            delivery.publish(job_id)
        # once the figures are final: whoever waits for this line reads the final counters
        log("INFO", "stopped: cancelled while running")

    def terminal(type_: str, data: dict[str, Any]) -> dict[str, Any]:
        # written with the final counters, so it is the job's last event and carries them
        return outbox.fields(type_, {**data, **events.about(job)})

    if sink.cancelled.is_set():
        cancelled()
        return
    if result.finish_reason == "item_limit":
        log(
            "WARNING",
            f"stopped at {sink.max_items} items (MAX_ITEMS_PER_JOB, MAX_STORED_ITEMS_PER_USER)",
        )
    started = job.get("started_at")
    figures = {**job, **counters}
    if result.error:
        data = {**events.counters_of({**figures, "status": jobs.FAILED}), "error": result.error}
        event = terminal(events.FAILED, data)
        done = repo.finish(
            job_id,
            "fail",
            run_id,
            started,
            current=job,
            error=result.error,
            **counters,
            **extra,
            **event,
        )
        if done is not None:
            log("ERROR", f"failed: {result.error['message']}")
            delivery.publish(job_id, done)
        else:
            cancelled()  # cancelled at the last moment: still ours, so its counters are these
    else:
        data = events.counters_of({**figures, "status": jobs.COMPLETED, "progress": 100})
        event = terminal(events.COMPLETED, data)
        done = repo.finish(
            job_id,
            "complete",
            run_id,
            started,
            current=job,
            progress=100,
            **counters,
            **extra,
            **event,
        )
        if done is not None:
            pages, items = counters["pages_crawled"], counters["items_scraped"]
            log("INFO", f"completed: {pages} pages, {items} items")
            delivery.publish(job_id, done)
        else:
            cancelled()
