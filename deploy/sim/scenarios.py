"""What the harness shows: throughput as worker hosts are added, a worker host lost mid-run,
and the data host's Redis restarted empty mid-run; each audited for exactly-once results."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from deploy.sim.cpu import Sampler, Span
from deploy.sim.hosts import Hosts
from deploy.sim.stack import Stack
from deploy.sim.workload import Audit, Client, host_of


@dataclass
class Context:
    stack: Stack
    hosts: Hosts
    client: Client
    sampler: Sampler
    timeout: float


def utcnow() -> datetime:
    """Now, as MongoDB returns times (naive UTC, milliseconds)."""
    moment = datetime.now(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def summary(audit: Audit) -> dict[str, Any]:
    return {
        "jobs": audit.jobs,
        "completed": audit.completed,
        "not_completed": audit.not_completed[:10],
        "items_expected": audit.items_expected,
        "items_stored": audit.items_stored,
        "duplicates": audit.duplicates,
        "missing": audit.missing,
        "final_lines_not_one": audit.finals_not_one,
        "exactly_once": audit.exactly_once,
        "jobs_by_host": dict(sorted(audit.by_host.items())),
        "host_of_each_job": audit.host_of_job,
    }


def throughput(ctx: Context, workers: int, jobs: int) -> dict[str, Any]:
    """The same workload with `workers` worker hosts up: rate, spread and CPU per host."""
    ctx.client.register()
    span = Span(ctx.sampler)
    ids = ctx.client.submit(jobs)
    finished = ctx.client.wait(ids, ctx.timeout)
    span.end()
    audit = ctx.client.audit(ids)
    seconds = audit.seconds or span.wall
    return {
        "workers": workers,
        "finished": finished,
        "seconds": round(seconds, 2),
        "jobs_per_second": round(jobs / seconds, 3),
        "items_per_second": round(audit.items_stored / seconds, 1),
        "pages_per_second": round(jobs * ctx.client.pages / seconds, 1),
        "cores_by_host": {h: round(span.cores(h), 2) for h in sorted(span.by_host)},
        "cores_by_program": {
            p: round(c / span.wall, 2)
            for p, c in sorted(span.by_program.items())
            if c / span.wall >= 0.01
        },
        "cores_ours": round(sum(span.by_host.values()) / span.wall, 2),
        "cores_machine": round(span.machine_cores_busy, 2),
        **summary(audit),
    }


def host_loss(ctx: Context, victim: str, jobs: int) -> dict[str, Any]:
    """Lose `victim` while it runs jobs: cable cut, every process killed. Every job must still
    complete once; how long its orphaned jobs waited to run again and to finish."""
    ctx.client.register()
    ids = ctx.client.submit(jobs)
    deadline = time.monotonic() + ctx.timeout
    orphans: list[dict] = []
    while time.monotonic() < deadline:
        orphans = [j for j in ctx.client.running_on(ids, victim) if j.get("items_scraped", 0) > 0]
        if orphans:
            break
        time.sleep(0.2)
    if not orphans:
        raise RuntimeError(f"no job ever ran on {victim}")
    orphans = ctx.client.running_on(ids, victim)
    lost_at = utcnow()
    killed = ctx.hosts.lose(victim)
    finished = ctx.client.wait(ids, ctx.timeout * 2)
    audit = ctx.client.audit(ids)
    back, done, finished_on = [], [], set()
    for job in orphans:
        restarted = [t for t in ctx.client.log_times(job["_id"], "^started on") if t > lost_at]
        if restarted:
            back.append((restarted[0] - lost_at).total_seconds())
        final = ctx.client.db.jobs.find_one({"_id": job["_id"]}, {"completed_at": 1, "worker": 1})
        if final and final.get("completed_at"):
            done.append((final["completed_at"] - lost_at).total_seconds())
            finished_on.add(host_of(final.get("worker")))
    return {
        "victim": victim,
        "processes_killed": killed,
        "finished": finished,
        "orphaned_jobs": len(orphans),
        "orphans_finished_on": sorted(finished_on),
        "orphans_running_again_after_s": round(max(back), 1) if back else None,
        "orphans_completed_after_s": round(max(done), 1) if done else None,
        "all_completed_after_s": round((audit.last_completed - lost_at).total_seconds(), 1)
        if audit.last_completed
        else None,
        **summary(audit),
    }


def queued_job_ids(redis_url: str) -> set[str]:
    """Job ids of the scrape messages waiting in the broker's lists (every priority)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    found = set()
    try:
        for step in range(10):
            for raw in client.lrange("scrapy" if not step else f"scrapy:{step}", 0, -1):
                body = json.loads(base64.b64decode(json.loads(raw)["body"]))
                found.add(str(body[0][0]))
    finally:
        client.close()
    return found


def redis_restart(ctx: Context, jobs: int) -> dict[str, Any]:
    """Kill the data host's Redis while jobs run and wait, start it again empty: every job must
    still complete once (MongoDB is the source of truth; the reconciler re-sends)."""
    ctx.client.register()
    ids = ctx.client.submit(jobs)
    deadline = time.monotonic() + ctx.timeout
    counts: Any = {}
    while time.monotonic() < deadline:
        counts = ctx.client.statuses(ids)
        if counts["running"] and counts["pending"]:
            break
        time.sleep(0.1)
    lost = queued_job_ids(ctx.stack.redis_url) & set(ids)  # these messages die with Redis
    server = ctx.hosts.find("data", "redis")
    server.stopped = True
    assert server.popen is not None
    server.popen.kill()
    server.popen.wait(10)
    restarted_at = utcnow()
    ctx.stack.start_redis()  # a new, empty redis-server on the same address
    finished = ctx.client.wait(ids, ctx.timeout * 2)
    audit = ctx.client.audit(ids)
    starts = []
    for job_id in lost:  # only the reconciler can bring these back
        later = [t for t in ctx.client.log_times(job_id, "^started on") if t > restarted_at]
        if later:
            starts.append((later[0] - restarted_at).total_seconds())
    return {
        "running_at_restart": counts.get("running", 0),
        "pending_at_restart": counts.get("pending", 0),
        "messages_lost": len(lost),
        "lost_message_jobs_running_again_after_s": round(min(starts), 1) if starts else None,
        "finished": finished,
        "all_completed_after_s": round((audit.last_completed - restarted_at).total_seconds(), 1)
        if audit.last_completed
        else None,
        **summary(audit),
    }
