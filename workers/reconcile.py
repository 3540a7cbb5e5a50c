"""Maintenance: re-queue jobs whose worker died, re-send pending jobs whose message was lost,
purge what deleted jobs' workers wrote late, and probe proxies. Runs on the `maintenance` queue."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import redis

from shared import db as dbmod
from shared import jobs, tasks
from shared.jobs import JobRepository
from shared.proxies import ProxyRepository
from shared.settings import get_settings
from workers.execution import send


def _queued_job_ids(client: redis.Redis) -> set[str]:
    """Job ids of scrape messages waiting in any queue or reserved by a worker."""
    found: set[str] = set()

    def note(raw: bytes | str) -> None:
        try:
            message = json.loads(raw)
            if isinstance(message, list):  # unacked entries: [message, exchange, routing_key]
                message = message[0]
            body = json.loads(base64.b64decode(message["body"]))
            if message.get("headers", {}).get("task") == tasks.SCRAPE and body[0]:
                found.add(str(body[0][0]))
        except (ValueError, KeyError, IndexError, TypeError):
            return

    for queue in (tasks.QUEUE_SCRAPY, tasks.QUEUE_PLAYWRIGHT):
        for step in range(10):
            name = queue if step == 0 else f"{queue}:{step}"
            for raw in client.lrange(name, 0, -1):
                note(raw)
    for raw in client.hvals("unacked"):
        note(raw)
    return found


_broker: dict[str, str] = {}


def _broker_restarted(client: redis.Redis) -> bool:
    """True when Redis restarted since this process last looked (its run_id changed)."""
    try:
        run_id = str(client.info("server").get("run_id"))
    except redis.RedisError:
        return False
    previous = _broker.get("run_id")
    _broker["run_id"] = run_id
    return previous is not None and previous != run_id


def reconcile(grace_seconds: int | None = None) -> dict[str, int]:
    """Re-enqueue pending jobs that have no message, and requeue running jobs whose worker died."""
    settings = get_settings()
    if grace_seconds is None:
        grace_seconds = settings.reconcile_after_seconds
    repo = JobRepository(dbmod.database(settings))
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    if _broker_restarted(client):
        grace_seconds = 0  # every message waiting in the old Redis is gone: re-send them all
    queued = _queued_job_ids(client)
    cutoff = jobs.now() - timedelta(seconds=grace_seconds)
    # a running job's heartbeat comes every PROGRESS_INTERVAL_SECONDS: past this, it is orphaned
    stale = jobs.now() - timedelta(seconds=settings.job_stale_seconds)
    requeued = resent = 0
    for job in repo.jobs.find({"status": jobs.RUNNING, "heartbeat_at": {"$lt": stale}}):
        moved = repo.transition(
            job["_id"], "requeue", extra_filter={"heartbeat_at": {"$lt": stale}}
        )
        if moved is not None:
            jobs.log(repo.db, job["_id"], "WARNING", "worker lost: job re-queued")
            send(moved, moved.get("queue") or tasks.QUEUE_SCRAPY, resume=True)
            requeued += 1
    for job in repo.jobs.find(
        {"status": jobs.PENDING, "updated_at": {"$lt": cutoff}}, {"priority": 1, "queue": 1}
    ):
        if job["_id"] not in queued:
            send(job, job.get("queue") or tasks.QUEUE_SCRAPY)
            repo.jobs.update_one({"_id": job["_id"]}, {"$set": {"updated_at": jobs.now()}})
            resent += 1
    # a worker that lost its job to a delete may have flushed items after it: purge them
    purged = repo.purge_deleted(settings.max_timeout_seconds + settings.job_stale_seconds * 3)
    return {"requeued": requeued, "resent": resent, "purged": purged}


def check_proxies() -> dict[str, int]:
    """Probe banned and cooling proxies; the ones that answer again become active."""
    settings = get_settings()
    return ProxyRepository.from_settings(dbmod.database(settings), settings).check()
