"""Where the time of a one-page job goes inside the worker (no Celery, no API).

    .venv/bin/python bench/profile_onepage.py [--jobs 30]

Starts the demo site (own process) and SecantusDB on disk, then runs one-page jobs in this
process through workers.execution.execute, exactly as a Celery worker child would, with wall
timers around each step, Scrapy signals inside the crawl, and a pymongo command listener
(round trips to MongoDB per job). Prints the median of each phase.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from common import one_page_job  # noqa: E402

from deploy import embedded  # noqa: E402

CURRENT: dict[str, float] = {}
T0 = [0.0]


def mark(name: str) -> None:
    CURRENT.setdefault(name, (time.perf_counter() - T0[0]) * 1000)


class Timeline:
    """A Scrapy extension that stamps the crawl's milestones into CURRENT."""

    @classmethod
    def from_crawler(cls, crawler):
        from scrapy import signals

        ext = cls()
        crawler.signals.connect(ext.engine_started, signal=signals.engine_started)
        crawler.signals.connect(ext.reached, signal=signals.request_reached_downloader)
        crawler.signals.connect(ext.received, signal=signals.response_received)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        mark("crawler_created")
        return ext

    def engine_started(self):
        mark("engine_started")

    def reached(self, request, spider):
        kind = "robots" if request.url.endswith("/robots.txt") else "page"
        mark(f"{kind}_request_sent")

    def received(self, response, request, spider):
        kind = "robots" if request.url.endswith("/robots.txt") else "page"
        mark(f"{kind}_response")

    def closed(self, spider, reason):
        mark("spider_closed")


def main(argv: list[str] | None = None) -> int:
    sys.modules.setdefault("profile_onepage", sys.modules[__name__])  # Scrapy loads Timeline
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=30)
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-onepage-"))
    site_proc = subprocess.Popen(
        [sys.executable, "-m", "testing.sites.server", "--pages", "10"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    mongo = None
    try:
        site = site_proc.stdout.readline().split()[1]
        mongo = embedded.start_secantus(tmp / "data")
        os.environ.update(
            ENV="test",
            MONGO_URL=mongo.url,
            MONGO_DB=f"onepage_{uuid.uuid4().hex[:8]}",
            REDIS_URL="redis://127.0.0.1:1/0",  # unused by execute() for scrapy jobs
        )
        from pymongo import monitoring

        commands: dict[str, list[float]] = defaultdict(list)

        class Listener(monitoring.CommandListener):
            def started(self, event):
                pass

            def succeeded(self, event):
                if T0[0]:
                    commands[event.command_name].append(event.duration_micros / 1000)

            def failed(self, event):
                pass

        monitoring.register(Listener())

        from scrapers import scrapy_engine
        from shared import db as dbmod
        from shared.jobs import JobRepository
        from shared.results import ItemSink
        from workers import execution

        original_settings = scrapy_engine.crawl_settings

        def crawl_settings(spec):
            settings = original_settings(spec)
            settings["EXTENSIONS"] = {**settings["EXTENSIONS"], "profile_onepage.Timeline": 0}
            return settings

        scrapy_engine.crawl_settings = crawl_settings

        def timed(owner, name, label_start, label_end):
            fn = getattr(owner, name)

            def wrapper(*a, **kw):
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
        per_job_commands: list[dict[str, int]] = []
        for i in range(args.jobs + 2):
            job = repo.create("bench", one_page_job(site, i % 10 + 1))
            CURRENT.clear()
            commands.clear()
            T0[0] = time.perf_counter()
            execution.execute(job["_id"], "scrapy", "bench")
            mark("done")
            T0[0] = 0.0  # the job's round trips end here; the check below is the bench's own
            done = repo.get(job["_id"])
            assert done["status"] == "completed" and done["items_scraped"] == 10, done
            if i >= 2:  # the first jobs import Scrapy and start the reactor
                rows.append(dict(CURRENT))
                per_job_commands.append({k: len(v) for k, v in commands.items()})
                per_job_commands[-1]["_db_ms"] = sum(sum(v) for v in commands.values())
        order = sorted(rows[0], key=lambda k: statistics.median(r[k] for r in rows))
        print(f"one-page job inside the worker, median over {len(rows)} jobs (ms since start):")
        prev = 0.0
        for key in order:
            value = statistics.median(r[key] for r in rows if key in r)
            print(f"  {value:7.1f}  (+{value - prev:6.1f})  {key}")
            prev = value
        names = sorted({k for c in per_job_commands for k in c if k != "_db_ms"})
        calls = {n: statistics.median(c.get(n, 0) for c in per_job_commands) for n in names}
        db_ms = statistics.median(c["_db_ms"] for c in per_job_commands)
        print(f"MongoDB round trips per job (median): {calls}; total {db_ms:.1f} ms in DB")
    finally:
        if mongo is not None:
            mongo.stop()
        site_proc.terminate()
        site_proc.wait(10)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
