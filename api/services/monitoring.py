"""Operational views: job statistics, dependency pings, queue depths and Prometheus metrics."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import redis
from flask import current_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from api.security import is_admin
from api.services import db, settings
from shared import db as dbmod
from shared import jobs, tasks, usage
from shared.auto_memory import AutoMemory
from shared.counters import JobCounters
from shared.errors import Unavailable
from shared.users import UserDoc

logger = logging.getLogger(__name__)
PING_TIMEOUT = 1.0


def _scope(user: UserDoc | None) -> dict[str, Any]:
    return {} if user is None or is_admin(user) else {"owner_id": user["_id"]}


def stats(user: UserDoc) -> dict[str, Any]:
    """From the counters (shared/counters.py), plus the running jobs' own figures."""
    owner = None if is_admin(user) else user["_id"]
    counters = JobCounters(db())
    docs = counters.of(owner)
    cells = counters.cells(docs)
    counts = counters.by_status(cells)
    items = counters.stored_sum(cells, "items") + counters.running_sum(owner, "items_scraped")
    finished = counts[jobs.COMPLETED] + counts[jobs.FAILED]
    return {
        "status_counts": counts,
        "total_items_scraped": items,
        "jobs_last_24h": _created_last_day(counters, docs, owner),
        "success_rate": round(counts[jobs.COMPLETED] / finished, 4) if finished else None,
        "total_jobs": sum(counts.values()),
    }


def auto_sites(skip: int, limit: int) -> dict[str, Any]:
    """What `auto` remembers per site (admin): engine, reason, figures, expiry."""
    docs, total = AutoMemory.from_settings(db(), settings()).listing(limit=limit, skip=skip)
    return {"total": total, "sites": [{"site": d["_id"], **d} for d in docs]}


def _created_last_day(counters: JobCounters, docs: list[dict[str, Any]], owner: str | None) -> int:
    """Whole hours from the hour buckets; the part of the hour 24 h ago counted exactly."""
    now = jobs.now()
    since = now - timedelta(hours=24)
    next_hour = since.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    # the index on created_at alone: at most an hour of everyone's jobs, the owner's counted
    edge = db().jobs.find({"created_at": {"$gte": since, "$lt": next_hour}}, {"owner_id": 1})
    partial = sum(1 for job in edge if owner is None or job.get("owner_id") == owner)
    return counters.created_since(docs, next_hour) + partial


def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings().redis_url, socket_timeout=PING_TIMEOUT, socket_connect_timeout=PING_TIMEOUT
    )


def _redis_ok() -> bool:
    try:
        return bool(_redis().ping())
    except redis.RedisError:
        return False


def _workers() -> dict[str, Any] | None:
    """Replies of live workers to a broadcast ping, or None when the broker is unreachable."""
    celery = current_app.extensions["scrapemaster_celery"]
    try:
        replies = celery.control.ping(timeout=PING_TIMEOUT)
    except Exception:  # broker errors come in many kinds; all mean "cannot tell"
        logger.warning("worker ping failed", exc_info=True)
        return None
    return {name: reply for item in replies for name, reply in item.items()}


def system() -> tuple[dict[str, Any], int]:
    """Health of each part from real pings with short timeouts; 503 when one is down."""
    redis_up = _redis_ok()
    mongo_up = dbmod.ping(settings(), int(PING_TIMEOUT * 1000))
    workers = _workers() if redis_up else None
    state = {
        "redis": "healthy" if redis_up else "unhealthy",
        "mongodb": "healthy" if mongo_up else "unhealthy",
        "api": "healthy",
        "workers": "healthy" if workers else "unhealthy",
        "worker_count": len(workers or {}),
        "timestamp": jobs.now().isoformat().replace("+00:00", "Z"),
    }
    down = [part for part in ("redis", "mongodb", "workers") if state[part] != "healthy"]
    if down:
        state["status"] = "unhealthy"
        state["detail"] = "unhealthy: " + ", ".join(down)
        return state, 503
    state["status"] = "healthy"
    return state, 200


def ready() -> tuple[dict[str, Any], int]:
    """200 when Redis and MongoDB answer within a second, else 503 naming the part that doesn't."""
    down = [
        name
        for name, up in (
            ("redis", _redis_ok()),
            ("mongodb", dbmod.ping(settings(), int(PING_TIMEOUT * 1000))),
        )
        if not up
    ]
    if down:
        raise Unavailable(f"not ready: {', '.join(down)} unavailable")
    return {"status": "ready"}, 200


def queues() -> dict[str, Any]:
    try:
        waiting = tasks.queue_depths(_redis())
    except redis.RedisError as exc:
        from shared.errors import Unavailable

        raise Unavailable(f"Redis unreachable: {exc}") from None
    celery = current_app.extensions["scrapemaster_celery"]
    workers: dict[str, Any] = {}
    try:
        inspect = celery.control.inspect(timeout=PING_TIMEOUT)
        active, reserved = inspect.active() or {}, inspect.reserved() or {}
    except Exception:  # broker trouble: report queues without workers
        active, reserved = {}, {}
    for name in sorted(set(active) | set(reserved)):
        workers[name] = {
            "active": len(active.get(name, [])),
            "reserved": len(reserved.get(name, [])),
            "active_jobs": [t.get("args", [None])[0] for t in active.get(name, [])],
        }
    return {"queues": {q: {"waiting": n} for q, n in waiting.items()}, "workers": workers}


class _JobsCollector(Collector):
    """Reads the figures from MongoDB and Redis at scrape time, so every API process agrees."""

    def collect(self):
        counters = JobCounters(db())
        docs = counters.of(None)
        cells = counters.cells(docs)
        by_status = GaugeMetricFamily("scrapemaster_jobs", "Jobs by status", labels=["status"])
        for status, n in counters.by_status(cells).items():
            by_status.add_metric([status], n)
        yield by_status
        items = CounterMetricFamily("scrapemaster_items_scraped", "Items scraped by all jobs")
        items.add_metric(
            [], counters.stored_sum(cells, "items") + counters.running_sum(None, "items_scraped")
        )
        yield items
        pages = CounterMetricFamily("scrapemaster_pages_crawled", "Pages crawled by all jobs")
        pages.add_metric(
            [], counters.stored_sum(cells, "pages") + counters.running_sum(None, "pages_crawled")
        )
        yield pages
        # a histogram kept as runs finish: nothing here grows with the store
        buckets, total, _count = counters.durations(docs)
        yield HistogramMetricFamily(
            "scrapemaster_job_duration_seconds",
            "Duration of finished job runs",
            buckets=buckets,
            sum_value=total,
        )
        depth = GaugeMetricFamily(
            "scrapemaster_queue_depth", "Messages waiting per queue", labels=["queue"]
        )
        try:
            for queue, n in tasks.queue_depths(_redis()).items():
                depth.add_metric([queue], n)
        except redis.RedisError:
            pass
        yield depth


class _UsageCollector(Collector):
    """This month's usage per user (shared/usage.py) for the METRICS_TOP_USERS users with the
    most pages, the rest summed under `user="other"`: the label count stays bounded however
    many users there are (GET /admin/usage has everyone)."""

    def collect(self):
        month = usage.UsageStore(db()).month_by_user(jobs.now())
        top = sorted(month, key=lambda owner: (-month[owner]["pages"], owner))
        top = top[: max(0, settings().metrics_top_users)]
        names = {
            str(u["_id"]): u.get("username") or str(u["_id"])
            for u in db().users.find({"_id": {"$in": top}}, {"username": 1})
        }
        rows: dict[str, dict[str, float]] = {names.get(owner, owner): month[owner] for owner in top}
        rest = [month[owner] for owner in month if owner not in set(top)]
        if rest:
            rows["other"] = {f: sum(row[f] for row in rest) for f in usage.FIELDS}
        for field, what in (
            ("jobs", "Jobs created this month (UTC)"),
            ("pages", "Pages fetched this month (UTC)"),
            ("items", "Items stored this month (UTC)"),
            ("browser_seconds", "Seconds of open browser tabs this month (UTC)"),
        ):
            family = GaugeMetricFamily(f"scrapemaster_usage_{field}", what, labels=["user"])
            for user, row in rows.items():
                family.add_metric([user], row[field])
            yield family


def metrics() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_JobsCollector())
    registry.register(_UsageCollector())
    return generate_latest(registry)
