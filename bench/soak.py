"""Soak: does the service stay fast as its history grows?

1. Curve: one user submits `--soak-total` one-page jobs in bursts of `--burst`, each burst
   waited for; every `--every` jobs it prints the rate of the last ones and the p50 of
   `GET /jobs?limit=50` (with X-Total-Count), `GET /jobs/stats`, `GET /monitoring/stats`,
   `GET /schedules/history?limit=50`, `GET /jobs/{id}` and a webhook's deliveries (20 calls each).
2. At scale: the store is filled directly with `--seed-jobs` finished jobs (spread over 30 days)
   holding `--seed-items` items, and as many runs of one schedule and webhook delivery attempts,
   for the same user; then the same bursts and reads run again.
   The jobs/s ratio (at scale / the first `--every` on an empty store) is the figure.

The stack is the real one (testing.helpers.Stack): gunicorn (API), a scrapy worker with 2
processes, redis-server, SecantusDB on disk, the demo site in its own process.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests

from bench.common import Cleanup, log, one_page_job, stack_of, start_site
from shared.jobs import now
from testing.helpers import Stack, wait_for

READS = {
    "GET /jobs?limit=50": "/jobs?limit=50",
    "GET /jobs/stats": "/jobs/stats",
    "GET /monitoring/stats": "/monitoring/stats",
    "GET /schedules/history?limit=50": "/schedules/history?limit=50",
}
HOOK = "GET /webhooks/{id}/deliveries"


def _p50_ms(fn: Callable[[], Any], n: int = 20) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


class Soak:
    def __init__(self, stack: Stack, site: str, headers: dict[str, str]):
        self.stack, self.site, self.headers = stack, site, headers
        self.session = requests.Session()
        self.session.headers.update(headers)
        self.done = 0
        self.last_id = ""
        # a webhook that nothing delivers to (the receiver is never called): its log is read
        body = {"webhook_url": "http://127.0.0.1:9/hook", "events": ["job.failed"]}
        hook = self.session.post(stack.url("/webhooks"), json=body, timeout=30)
        hook.raise_for_status()
        self.hook_id = hook.json()["id"]

    def get(self, path: str) -> requests.Response:
        answer = self.session.get(self.stack.url(path), timeout=30)
        answer.raise_for_status()
        return answer

    def burst(self, size: int) -> None:
        """Submit `size` one-page jobs and wait until every one has finished."""
        for i in range(size):
            job = self.session.post(
                self.stack.url("/jobs"), json=one_page_job(self.site, i % 10 + 1), timeout=30
            )
            job.raise_for_status()
            self.last_id = job.json()["id"]
        self.done += size

        def finished() -> bool:
            stats = self.get("/jobs/stats").json()
            return stats["pending"] == 0 and stats["running"] == 0

        wait_for(finished, 600, interval=0.05, message="burst finished")

    def reads(self) -> dict[str, float]:
        found = {label: _p50_ms(functools.partial(self.get, path)) for label, path in READS.items()}
        found["GET /jobs/{id}"] = _p50_ms(lambda: self.get(f"/jobs/{self.last_id}"))
        found[HOOK] = _p50_ms(lambda: self.get(f"/webhooks/{self.hook_id}/deliveries"))
        return found

    def stretch(self, jobs: int, burst: int) -> float:
        """jobs/s over `jobs` one-page jobs."""
        started = time.perf_counter()
        for _ in range(max(1, jobs // burst)):
            self.burst(burst)
        return jobs / (time.perf_counter() - started)


def seed(stack: Stack, owner_id: str, jobs: int, items: int) -> None:
    """Finished jobs and their items written straight into the store (bulk inserts), then the
    counters recounted, as if the user had run them over the last 30 days."""
    db = stack.database()
    per_job = max(1, items // max(1, jobs))
    start = now() - timedelta(days=30)
    top = int((db.job_counters.find_one({"_id": owner_id}) or {}).get("seq") or 0)
    batch_jobs: list[dict[str, Any]] = []
    batch_items: list[dict[str, Any]] = []
    written = time.perf_counter()
    for i in range(jobs):
        created = start + timedelta(seconds=i * 30 * 86400 / jobs)
        job_id = uuid.uuid4().hex
        batch_jobs.append(
            {
                "_id": job_id,
                "owner_id": owner_id,
                "seq": top + i + 1,
                "url": "http://127.0.0.1/catalog/",
                "urls": ["http://127.0.0.1/catalog/"],
                "engine": "scrapy",
                "engine_used": "scrapy",
                "status": "completed",
                "priority": 5,
                "selectors": {"sku": "./@data-sku"},
                "config": {"item_selector": "div.product", "max_pages": 1},
                "progress": 100,
                "items_scraped": per_job,
                "items_failed": 0,
                "pages_crawled": 1,
                "attempts": 1,
                "epoch": 0,
                "error": None,
                "created_at": created,
                "updated_at": created,
                "started_at": created,
                "completed_at": created + timedelta(seconds=1),
                "duration_seconds": 1.0,
                "queue": "scrapy",
            }
        )
        for part, start_at in enumerate(range(0, per_job, 10)):
            data = [
                {"sku": f"SKU-{k:05d}", "title": f"Product {k}", "price": "$1.50"}
                for k in range(start_at, min(per_job, start_at + 10))
            ]
            batch_items.append(
                {
                    "_id": f"{job_id}:seed:{part}",
                    "job_id": job_id,
                    "epoch": 0,
                    "url": f"http://127.0.0.1/catalog/page/{part + 1}",
                    "first": start_at,
                    "n": len(data),
                    "items": data,
                    "scraped_at": created,
                }
            )
        if len(batch_items) >= 2000 or i == jobs - 1:
            db.jobs.insert_many(batch_jobs, ordered=False)
            db.results.insert_many(batch_items, ordered=False)
            batch_jobs, batch_items = [], []
        if (i + 1) % 5000 == 0:
            log(f"  seeded {i + 1} jobs ({time.perf_counter() - written:.0f} s)")
    from shared.counters import JobCounters

    db.job_counters.update_one({"_id": owner_id}, {"$max": {"seq": top + jobs}}, upsert=True)
    JobCounters(db).repair(now(), settle_seconds=0)
    seed_runs(db, owner_id, jobs)
    seed_attempts(db, owner_id, jobs)


def seed_attempts(db: Any, owner_id: str, attempts: int) -> None:
    """The soak's webhook gets a delivery log of `attempts` attempts over the last 14 days."""
    hook = db.webhooks.find_one({"owner_id": owner_id})
    end, batch = now(), []
    db.webhooks.update_one({"_id": hook["_id"]}, {"$set": {"created_at": end - timedelta(days=15)}})
    for i in range(attempts):
        batch.append(
            {
                "_id": uuid.uuid4().hex,
                "webhook_id": hook["_id"],
                "owner_id": owner_id,
                "delivery_id": uuid.uuid4().hex,
                "attempt": 1,
                "state": "delivered",
                "event": "job.failed",
                "status_code": 200,
                "timestamp": end - timedelta(seconds=(attempts - i) * 14 * 86400 / attempts),
            }
        )
        if len(batch) == 2000 or i == attempts - 1:
            db.webhook_deliveries.insert_many(batch, ordered=False)
            batch = []
    log(f"  seeded {attempts} webhook delivery attempts")


def seed_runs(db: Any, owner_id: str, runs: int) -> None:
    """A schedule's history of `runs` runs, one a minute up to now (a minute schedule's
    fortnight for 20,000), written straight into the store, then counted."""
    from shared.run_history import RunCounters

    schedule_id, end, batch = uuid.uuid4().hex, now(), []
    for i in range(runs):
        moment = end - timedelta(minutes=runs - i)
        batch.append(
            {
                "_id": uuid.uuid4().hex,
                "schedule_id": schedule_id,
                "owner_id": owner_id,
                "schedule_name": "every minute",
                "slot": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "scheduled_for": moment,
                "trigger": "cron",
                "status": "completed",
                "job_id": uuid.uuid4().hex,
                "job_created": True,
                "started_at": moment,
                "completed_at": moment + timedelta(seconds=1),
                "items_scraped": 10,
                "error": None,
                "changes": None,
                "created_at": moment,
            }
        )
        if len(batch) == 2000 or i == runs - 1:
            db.schedule_runs.insert_many(batch, ordered=False)
            batch = []
    RunCounters(db).repair(settle_seconds=0)
    log(f"  seeded {runs} schedule runs")


TITLE = "As the history grows"
ABOUT = (
    "One user submits one-page jobs in bursts of 50, each burst waited for (a scrapy worker "
    "with 2 processes); every 500 jobs, the rate of the last 500 and the p50 of 20 calls of "
    "each read. Then the store is filled directly with 20,000 finished jobs holding 1,000,000 "
    "items, as many schedule runs and webhook delivery attempts, and the same bursts and reads "
    "run again. What keeps the curve flat is in [Listing jobs](guide/jobs.md#listing-jobs)."
)
READ_LABELS = {k: f"`{k}` p50, ms" for k in (*READS, "GET /jobs/{id}", HOOK)}
LABELS = {
    "jobs": "one-page jobs submitted on the empty store",
    "burst": "jobs a burst",
    "empty_jobs_per_s": "one-page jobs/s, first 500 on the empty store",
    "scale_jobs_per_s": "one-page jobs/s with the seeded store",
    "curve": "the curve",
    "jobs_in_store": "jobs in the store",
    "items_in_store": "items in the store",
    "jobs_per_s": "one-page jobs/s (last 500)",
    **READ_LABELS,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--soak-total", type=int, default=3000, help="jobs on the empty store")
    parser.add_argument("--burst", type=int, default=50, help="jobs submitted at once")
    parser.add_argument("--every", type=int, default=500, help="jobs between two readings")
    parser.add_argument(
        "--seed-jobs", type=int, default=20000, help="finished jobs seeded (0: none)"
    )
    parser.add_argument("--seed-items", type=int, default=1_000_000, help="their items")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if min(args.soak_total, args.burst, args.every) < 1 or args.every % args.burst:
        raise SystemExit(
            "--soak-total, --burst, --every must be positive; --every a multiple of --burst"
        )
    curve: list[dict[str, Any]] = []
    with Cleanup() as cleanup, stack_of(args.results_dir, "soak") as stack:
        site, _site_proc = start_site(10, cleanup)
        stack.start(api=True, queues=(), PROGRESS_INTERVAL_SECONDS="0.5")
        stack.start_worker("scrapy", concurrency=2)
        headers = stack.register()
        soak = Soak(stack, site, headers)
        soak.burst(args.burst)  # warm-up: imports, reactor, first connections
        owner = stack.database().users.find_one({})["_id"]
        log(f"curve: {args.soak_total} one-page jobs in bursts of {args.burst}")
        while soak.done - args.burst < args.soak_total:
            rate = soak.stretch(args.every, args.burst)
            row = {
                "jobs_in_store": soak.done - args.burst,
                "jobs_per_s": round(rate, 1),
                **soak.reads(),
            }
            curve.append(row)
            log(f"  {row}")
        if args.seed_jobs:
            log(f"seeding {args.seed_jobs} jobs with {args.seed_items} items")
            seed(stack, str(owner), args.seed_jobs, args.seed_items)
            soak.burst(args.burst)  # the store's caches after the bulk load
            rate = soak.stretch(args.every, args.burst)
            db = stack.database()
            row = {
                "jobs_in_store": db.jobs.estimated_document_count(),
                "items_in_store": sum(
                    int(d.get("items_scraped") or 0) for d in db.jobs.find({}, {"items_scraped": 1})
                ),
                "jobs_per_s": round(rate, 1),
                **soak.reads(),
            }
            curve.append(row)
            log(f"  at scale: {row}")
    figures: dict[str, Any] = {
        "jobs": args.soak_total,
        "burst": args.burst,
        "empty_jobs_per_s": curve[0]["jobs_per_s"],
    }
    ratios = {}
    if args.seed_jobs:
        figures["scale_jobs_per_s"] = curve[-1]["jobs_per_s"]
        ratios["scale_jobs_per_s / empty_jobs_per_s"] = round(
            curve[-1]["jobs_per_s"] / curve[0]["jobs_per_s"], 2
        )
    figures["curve"] = curve
    return {"figures": figures, "ratios": ratios}
