"""Where the time of a one-page job goes inside the worker (no Celery, no API).

Starts the demo site (own process) and SecantusDB on disk, then runs one-page jobs in this
process through workers.execution.execute, exactly as a Celery worker child would, with wall
timers around each step, Scrapy signals inside the crawl, and a pymongo command listener
(round trips to MongoDB per job). Prints the median of each phase.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections import defaultdict
from typing import Any

from bench.common import Cleanup, one_page_job, start_site, stores

CURRENT: dict[str, float] = {}
T0 = [0.0]


def mark(name: str) -> None:
    CURRENT.setdefault(name, (time.perf_counter() - T0[0]) * 1000)


class Timeline:
    """A Scrapy extension that stamps the crawl's milestones into CURRENT."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> Timeline:
        from scrapy import signals

        ext = cls()
        crawler.signals.connect(ext.engine_started, signal=signals.engine_started)
        crawler.signals.connect(ext.reached, signal=signals.request_reached_downloader)
        crawler.signals.connect(ext.received, signal=signals.response_received)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        mark("crawler_created")
        return ext

    def engine_started(self) -> None:
        mark("engine_started")

    def reached(self, request: Any, spider: Any) -> None:
        kind = "robots" if request.url.endswith("/robots.txt") else "page"
        mark(f"{kind}_request_sent")

    def received(self, response: Any, request: Any, spider: Any) -> None:
        kind = "robots" if request.url.endswith("/robots.txt") else "page"
        mark(f"{kind}_response")

    def closed(self, spider: Any, reason: str) -> None:
        mark("spider_closed")


TITLE = "Inside a one-page job"
ABOUT = (
    "One-page jobs run in one process through `workers.execution.execute`, exactly as a "
    "Celery worker child runs them (no Celery, no API), against the demo site and SecantusDB "
    "on disk: wall timers around each step, Scrapy's signals inside the crawl, and a pymongo "
    "listener counting the round trips to MongoDB. Medians over the jobs after two warm-ups."
)
LABELS = {
    "jobs": "jobs (after 2 warm-ups)",
    "worker_ms": "a one-page job inside the worker, ms",
    "mongodb_round_trips": "MongoDB round trips a job",
    "mongodb_round_trips_by_command": "of which, by command",
    "mongodb_ms": "time in those round trips, ms",
    "crawler_setup_ms": "crawler set-up, ms",
    "page_fetch_ms": "fetching the page, ms",
    "timeline_ms": "milestones, ms from the start",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=30)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with Cleanup() as cleanup, stores(args.results_dir) as (_redis, mongo):
        site, _proc = start_site(10, cleanup)
        os.environ.update(
            ENV="test",
            MONGO_URL=mongo.url,
            MONGO_DB=f"onepage_{uuid.uuid4().hex[:8]}",
            REDIS_URL="redis://127.0.0.1:1/0",  # unused by execute() for scrapy jobs
        )
        rows, per_job = measure(site, args.jobs)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows if key in r)

    order = sorted(rows[0], key=med)
    print(f"one-page job inside the worker, median over {len(rows)} jobs (ms since start):")
    prev = 0.0
    for key in order:
        print(f"  {med(key):7.1f}  (+{med(key) - prev:6.1f})  {key}")
        prev = med(key)
    names = sorted({k for c in per_job for k in c if k != "_db_ms"})
    calls = {n: statistics.median(c.get(n, 0) for c in per_job) for n in names}
    figures = {
        "jobs": len(rows),
        "worker_ms": round(med("done"), 1),
        "mongodb_round_trips": statistics.median(
            sum(v for k, v in c.items() if k != "_db_ms") for c in per_job
        ),
        "mongodb_round_trips_by_command": calls,
        "mongodb_ms": round(statistics.median(c["_db_ms"] for c in per_job), 1),
        "crawler_setup_ms": round(
            statistics.median(r["engine_started"] - r["engine_run_start"] for r in rows), 1
        ),
        "page_fetch_ms": round(
            statistics.median(r["page_response"] - r["page_request_sent"] for r in rows), 1
        ),
        "timeline_ms": {key: round(med(key), 1) for key in order},
    }
    return {"figures": figures, "ratios": {}}


def measure(site: str, jobs: int) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Milestones of each job (ms since its start) and its MongoDB commands."""
    from pymongo import monitoring

    commands: dict[str, list[float]] = defaultdict(list)

    class Listener(monitoring.CommandListener):
        def started(self, event: Any) -> None:
            pass

        def succeeded(self, event: Any) -> None:
            if T0[0]:
                commands[event.command_name].append(event.duration_micros / 1000)

        def failed(self, event: Any) -> None:
            pass

    monitoring.register(Listener())

    from scrapers import scrapy_engine
    from shared import db as dbmod
    from shared.jobs import JobRepository
    from shared.results import ItemSink
    from workers import execution

    original_settings = scrapy_engine.crawl_settings

    def crawl_settings(spec: Any) -> Any:
        settings = original_settings(spec)
        settings["EXTENSIONS"] = {**settings["EXTENSIONS"], f"{__name__}.Timeline": 0}
        return settings

    scrapy_engine.crawl_settings = crawl_settings  # type: ignore[assignment]

    def timed(owner: Any, name: str, label_start: str, label_end: str) -> None:
        fn = getattr(owner, name)

        def wrapper(*a: Any, **kw: Any) -> Any:
            mark(label_start)
            try:
                return fn(*a, **kw)
            finally:
                mark(label_end)

        setattr(owner, name, wrapper)

    timed(execution, "_claim", "claim_start", "claimed")
    timed(ItemSink, "__init__", "sink_init_start", "sink_ready")
    timed(scrapy_engine.ScrapyEngine, "run", "engine_run_start", "engine_run_done")
    timed(ItemSink, "close", "sink_close_start", "sink_closed")
    timed(execution, "_record", "record_start", "recorded")

    database = dbmod.database()
    dbmod.ensure_indexes(database)
    repo = JobRepository(database)
    rows: list[dict[str, float]] = []
    per_job: list[dict[str, float]] = []
    for i in range(jobs + 2):
        job = repo.create("bench", one_page_job(site, i % 10 + 1))
        CURRENT.clear()
        commands.clear()
        T0[0] = time.perf_counter()
        execution.execute(job["_id"], "scrapy", "bench")
        mark("done")
        T0[0] = 0.0  # the job's round trips end here; the check below is the bench's own
        done = repo.get(job["_id"])
        assert done is not None and done["status"] == "completed", done
        assert done["items_scraped"] == 10, done
        if i >= 2:  # the first jobs import Scrapy and start the reactor
            rows.append(dict(CURRENT))
            per_job.append({k: len(v) for k, v in commands.items()})
            per_job[-1]["_db_ms"] = sum(sum(v) for v in commands.values())
    return rows, per_job
