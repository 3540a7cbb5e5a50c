"""Maintenance: re-queue jobs whose worker died (or fail the poison ones), re-send pending jobs
whose message was lost, settle and tell about jobs cancelled under a dead run, publish events left
in the outbox, purge what deleted jobs' workers wrote late, and probe proxies. Runs on the
`maintenance` queue."""

from __future__ import annotations

from datetime import timedelta

import redis

from shared import db as dbmod
from shared import events, items, jobs, outbox, tasks
from shared.counters import JobCounters
from shared.jobs import JobRepository
from shared.proxies import ProxyRepository
from shared.run_history import RunCounters
from shared.settings import get_settings
from shared.webhooks import WebhookRepository
from workers import delivery
from workers.engines import event_log
from workers.execution import give_up, send

# an outbox event younger than this is being published by the process that wrote it
OUTBOX_GRACE_SECONDS = 5.0

_broker: dict[str, str] = {}


def _broker_restarted(client: redis.Redis, db=None) -> bool:
    """True when Redis restarted since the last look (its run_id changed). With `db`, the
    last run id seen is kept in MongoDB, so a reconciler process that was itself restarted
    (or a second one) still notices."""
    try:
        run_id = str(client.info("server").get("run_id"))
    except redis.RedisError:
        return False
    if db is None:
        previous = _broker.get("run_id")
        _broker["run_id"] = run_id
    else:
        seen = db.meta.find_one({"_id": "broker"}) or {}
        previous = seen.get("run_id")
        if previous != run_id:
            db.meta.update_one({"_id": "broker"}, {"$set": {"run_id": run_id}}, upsert=True)
    return previous is not None and previous != run_id


def _missing_messages(client: redis.Redis, pending: int, running: int) -> int:
    """How many pending jobs have no scrape message at least: pending jobs minus what waits
    in the scrape queues and what workers hold unacknowledged (less the running jobs' own).
    O(1) in Redis: LLEN and HLEN, never a read of the queues themselves."""
    waiting = sum(tasks.queue_depths(client, tasks.SCRAPE_QUEUES).values())
    held = int(client.hlen("unacked") or 0)
    return pending - max(0, waiting + held - running)


def reconcile(grace_seconds: int | None = None) -> dict[str, int]:
    """Requeue running jobs whose worker died, and re-send pending jobs whose message is gone:
    every one after a Redis restart, the ones whose first send failed, and, when the broker
    holds fewer messages than there are pending jobs, the longest-waiting ones. Claims are
    idempotent, so a job sent twice runs once."""
    settings = get_settings()
    if grace_seconds is None:
        grace_seconds = settings.reconcile_after_seconds
    database = dbmod.database(settings)
    repo = JobRepository(database)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    restarted = _broker_restarted(client, database)
    # a running job's heartbeat comes every PROGRESS_INTERVAL_SECONDS: past this, it is orphaned
    stale = jobs.now() - timedelta(seconds=settings.job_stale_seconds)
    requeued = resent = given_up = 0
    limit = settings.max_job_attempts
    for job in repo.jobs.find({"status": jobs.RUNNING, "heartbeat_at": {"$lt": stale}}):
        takeovers = int(job.get("takeovers") or 0)
        if takeovers >= limit:  # its worker died every time: a poison job
            failed = give_up(repo, job, stale, limit)
            if failed is not None:
                delivery.publish(job["_id"], failed)
                given_up += 1
            continue
        moved = repo.transition(
            job["_id"],
            "requeue",
            extra_filter={"heartbeat_at": {"$lt": stale}},
            current=job,
            takeovers=takeovers + 1,
        )
        if moved is not None:
            message = f"worker lost: job re-queued ({takeovers + 1} of {limit} take-overs)"
            jobs.log(repo.db, job["_id"], "WARNING", message)
            send(moved, moved.get("queue") or tasks.QUEUE_SCRAPY, resume=True)
            requeued += 1

    def resend(found) -> int:
        count = 0
        for job in found:
            send(job, job.get("queue") or tasks.QUEUE_SCRAPY)
            resends = int(job.get("resends") or 0) + 1
            moment = jobs.now()
            repo.jobs.update_one(
                {"_id": job["_id"], "status": jobs.PENDING},
                {
                    "$set": {
                        "updated_at": moment,
                        "resends": resends,
                        "resend_at": jobs.resend_at(moment, resends),
                    },
                    "$unset": {"unsent": ""},
                },
            )
            count += 1
        return count

    fields = {"priority": 1, "queue": 1, "resends": 1}
    if restarted:  # every message waiting in the old Redis is gone: re-send them all
        resent += resend(repo.jobs.find({"status": jobs.PENDING}, fields))
    else:
        resent += resend(repo.jobs.find({"unsent": True, "status": jobs.PENDING}, fields))
        # pending past its deadline: its message may be held by a worker that was killed
        due = {"status": jobs.PENDING, "resend_at": {"$lt": jobs.now()}}
        resent += resend(repo.jobs.find(due, fields))
        # counted, not read from the counters: recovery must not hang on their exactness
        # (pending and running jobs are the backlog, not the history: an index range each)
        pending = repo.jobs.count_documents({"status": jobs.PENDING})
        running = repo.jobs.count_documents({"status": jobs.RUNNING})
        missing = _missing_messages(client, pending, running)
        if missing > 0:
            cutoff = jobs.now() - timedelta(seconds=grace_seconds)
            # the longest-waiting first: the earliest resend deadline (index status, resend_at)
            waiting = repo.jobs.find(
                {"status": jobs.PENDING, "resend_at": {"$lt": jobs.now() + timedelta(days=3650)}},
                {**fields, "updated_at": 1},
            ).sort("resend_at", 1)
            stale_ones = [j for j in waiting if (j.get("updated_at") or cutoff) < cutoff]
            resent += resend(stale_ones[:missing])
    # a job cancelled while running whose run died before storing its final figures: its
    # stored items counted, and its job.cancelled, which that run never wrote
    for job in repo.jobs.find({"unsettled": True}):
        if job.get("status") == jobs.CANCELLED and (job.get("updated_at") or stale) < stale:
            stored = items.count(database, job["_id"])
            data = {**events.counters_of({**job, "items_scraped": stored}), **events.about(job)}
            if job.get("error"):  # why it was cancelled, when not by its owner
                data["error"] = job["error"]
            event = outbox.fields(events.CANCELLED, data)
            if repo.store_counters(job["_id"], None, {"items_scraped": stored}, event):
                delivery.publish(job["_id"])
    # events their writer could not publish (Redis was down, or it died): in order, once
    published = delivery.outbox().drain(OUTBOX_GRACE_SECONDS)
    # webhook attempts whose message an emptied Redis lost (a scan, after a restart only)
    redelivered = delivery.resend_pending(database) if restarted else 0
    # a worker that lost its job to a delete may have flushed items after it: purge them
    purged = repo.purge_deleted(settings.max_timeout_seconds + settings.job_stale_seconds * 3)
    return {
        "requeued": requeued,
        "resent": resent,
        "purged": purged,
        "failed_worker_lost": given_up,
        "events_published": published,
        "deliveries_resent": redelivered,
    }


def check_counters() -> dict[str, int]:
    """Recount the job counters and correct the ones a dead process left off by one."""
    database = dbmod.database(get_settings())
    counters = JobCounters(database)
    corrected = counters.repair(jobs.now())
    counters.prune_hours(jobs.now())
    runs = RunCounters(database).repair()
    return {"corrected": len(corrected), "runs_corrected": len(runs)}


def apply_retention(batch: int = 200) -> dict[str, int]:
    """Delete finished jobs whose last change is older than JOB_RETENTION_DAYS, with their
    items, logs and events (Scrapyd's `jobs_to_keep`, by age), and webhook delivery attempts
    older than that. Off when the setting is 0."""
    settings = get_settings()
    if settings.job_retention_days <= 0:
        return {"deleted": 0, "delivery_attempts": 0}
    repo = JobRepository(dbmod.database(settings))
    cutoff = jobs.now() - timedelta(days=settings.job_retention_days)
    deleted = 0
    # created before the cutoff (the index on created_at: once old jobs are gone, only those
    # that are old and still running or pending come back); finished before it, too
    for job in repo.jobs.find({"created_at": {"$lt": cutoff}}).batch_size(batch):
        last_change = job.get("updated_at") or job.get("created_at")
        if job.get("status") in jobs.TERMINAL and last_change < cutoff:
            repo.delete(job["_id"], current=job)
            event_log().delete_job(job["_id"])
            deleted += 1
    attempts = WebhookRepository(repo.db).prune(cutoff)
    return {"deleted": deleted, "delivery_attempts": attempts}


def check_proxies() -> dict[str, int]:
    """Probe banned and cooling proxies; the ones that answer again become active."""
    settings = get_settings()
    return ProxyRepository.from_settings(dbmod.database(settings), settings).check()
