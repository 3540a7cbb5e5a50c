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
from shared import jobs, tasks
from shared.auto_memory import AutoMemory
from shared.errors import Unavailable

logger = logging.getLogger(__name__)
PING_TIMEOUT = 1.0
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600)


def _scope(user: dict[str, Any] | None) -> dict[str, Any]:
    return {} if user is None or is_admin(user) else {"owner_id": user["_id"]}


def stats(user: dict[str, Any]) -> dict[str, Any]:
    scope = _scope(user)
    counts = {status: 0 for status in jobs.STATUSES}
    items = 0
    for row in db().jobs.aggregate(
        [
            {"$match": scope},
            {"$group": {"_id": "$status", "n": {"$sum": 1}, "items": {"$sum": "$items_scraped"}}},
        ]
    ):
        if row["_id"] in counts:
            counts[row["_id"]] = row["n"]
        items += row.get("items") or 0
    since = jobs.now() - timedelta(hours=24)
    finished = counts[jobs.COMPLETED] + counts[jobs.FAILED]
    return {
        "status_counts": counts,
        "total_items_scraped": items,
        "jobs_last_24h": db().jobs.count_documents({**scope, "created_at": {"$gte": since}}),
        "success_rate": round(counts[jobs.COMPLETED] / finished, 4) if finished else None,
        "total_jobs": sum(counts.values()),
    }


def auto_sites(skip: int, limit: int) -> dict[str, Any]:
    """What `auto` remembers per site (admin): engine, reason, figures, expiry."""
    docs, total = AutoMemory.from_settings(db(), settings()).listing(limit=limit, skip=skip)
    return {"total": total, "sites": [{"site": d["_id"], **d} for d in docs]}


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


def queue_depths(client: redis.Redis) -> dict[str, int]:
    """Messages waiting per engine queue, over all of kombu's priority sub-queues."""
    depths = {}
    for queue in tasks.QUEUES:
        names = [queue] + [f"{queue}:{step}" for step in range(1, 10)]
        pipe = client.pipeline()
        for name in names:
            pipe.llen(name)
        depths[queue] = sum(pipe.execute())
    return depths


def queues() -> dict[str, Any]:
    try:
        waiting = queue_depths(_redis())
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
        database = db()
        by_status = GaugeMetricFamily("scrapemaster_jobs", "Jobs by status", labels=["status"])
        items = CounterMetricFamily("scrapemaster_items_scraped", "Items scraped by all jobs")
        pages = CounterMetricFamily("scrapemaster_pages_crawled", "Pages crawled by all jobs")
        counts = {s: 0 for s in jobs.STATUSES}
        total_items = total_pages = 0
        for row in database.jobs.aggregate(
            [
                {
                    "$group": {
                        "_id": "$status",
                        "n": {"$sum": 1},
                        "items": {"$sum": "$items_scraped"},
                        "pages": {"$sum": "$pages_crawled"},
                    }
                }
            ]
        ):
            counts[row["_id"]] = row["n"]
            total_items += row.get("items") or 0
            total_pages += row.get("pages") or 0
        for status, n in counts.items():
            by_status.add_metric([status], n)
        items.add_metric([], total_items)
        pages.add_metric([], total_pages)
        yield by_status
        yield items
        yield pages
        durations = [
            d["duration_seconds"]
            for d in database.jobs.find(
                {"status": {"$in": list(jobs.TERMINAL)}, "duration_seconds": {"$ne": None}},
                {"duration_seconds": 1},
            )
        ]
        buckets, running = [], 0
        for bound in DURATION_BUCKETS:
            running = sum(1 for d in durations if d <= bound)
            buckets.append((str(float(bound)), running))
        buckets.append(("+Inf", len(durations)))
        yield HistogramMetricFamily(
            "scrapemaster_job_duration_seconds",
            "Duration of finished jobs",
            buckets=buckets,
            sum_value=sum(durations),
        )
        depth = GaugeMetricFamily(
            "scrapemaster_queue_depth", "Messages waiting per queue", labels=["queue"]
        )
        try:
            for queue, n in queue_depths(_redis()).items():
                depth.add_metric([queue], n)
        except redis.RedisError:
            pass
        yield depth


def metrics() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_JobsCollector())
    return generate_latest(registry)
