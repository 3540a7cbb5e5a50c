"""Where a Playwright job's time goes inside the engine, next to the bare script (no Celery, API).

    .venv/bin/python bench/profile_playwright.py [--pages 60] [--concurrency 2] [--rounds 3]

Starts the demo site (own process), then in this process alternates, on the same warm Chromium
of scrapers.browser_pool: one scrapers.playwright_engine.PlaywrightEngine job with a fake sink
(as tests/integration/test_playwright_engine.py does) and the bare crawl of
bench/bare_playwright.py, over the same N start URLs at the same concurrency. Playwright calls
are wrapped with wall timers (both sides alike), so the per-call totals say where the engine
spends time the bare script does not. `--sink mongo` gives the engine the service's real
shared.results.ItemSink on a SecantusDB server (on disk, own process) instead of the fake sink.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import bare_playwright as bare  # noqa: E402
from playwright.async_api import APIRequestContext, Browser, BrowserContext, Page  # noqa: E402
from procstats import Sampler  # noqa: E402
from run import Cleanup, start_site  # noqa: E402

from scrapers import extract, playwright_engine  # noqa: E402
from scrapers.browser_pool import close_pool, get_pool  # noqa: E402
from shared.jobspec import JobSpec, resolve_config  # noqa: E402
from shared.settings import Settings  # noqa: E402

SIDE = ["-"]
TIMES: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))


def _record(name: str, seconds: float) -> None:
    TIMES[SIDE[0]][name].append(seconds * 1000)


def wrap_async(owner: Any, attr: str, name: str) -> None:
    original = getattr(owner, attr)

    async def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            _record(name, time.perf_counter() - t0)

    setattr(owner, attr, timed)


def wrap_handler(owner: Any, attr: str, name: str) -> None:
    """A route handler keeps one parameter: Playwright passes (route, request) to two."""
    original = getattr(owner, attr)

    async def timed(route: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await original(route)
        finally:
            _record(name, time.perf_counter() - t0)

    setattr(owner, attr, timed)


def wrap_sync(owner: Any, attr: str, name: str) -> None:
    original = getattr(owner, attr)

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _record(name, time.perf_counter() - t0)

    setattr(owner, attr, timed)


def instrument() -> None:
    wrap_async(Browser, "new_context", "new_context")
    wrap_async(BrowserContext, "route", "context.route")
    wrap_async(BrowserContext, "new_page", "new_page")
    wrap_async(BrowserContext, "close", "context.close")
    wrap_async(Page, "goto", "goto(load)")
    wrap_async(Page, "content", "content")
    wrap_async(Page, "close", "page.close")
    wrap_async(APIRequestContext, "get", "robots.get")
    wrap_async(playwright_engine._Network, "settle", "settle")
    wrap_async(bare.Network, "settle", "settle")
    wrap_handler(playwright_engine, "_block_heavy", "route handler")
    wrap_handler(bare, "block_heavy", "route handler")
    wrap_async(playwright_engine._Robots, "allowed", "robots.allowed")
    wrap_async(playwright_engine.PlaywrightEngine, "_visit", "page total")
    wrap_sync(extract, "parse", "extract")
    wrap_sync(extract, "extract_items", "extract")
    wrap_sync(extract, "extract_links", "extract")
    wrap_sync(bare, "extract", "extract")


class FakeSink:
    def __init__(self) -> None:
        self.pages = 0
        self.found = 0
        self.empty: list[str] = []
        self.logs: list[tuple[str, str]] = []
        self.full = threading.Event()

    def page(self, url: str, status: int) -> None:
        self.pages += 1

    def items(self, page_url: str, found: list[dict[str, Any]]) -> None:
        self.found += len(found)
        if not found:
            self.empty.append(page_url)

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    @property
    def should_stop(self) -> bool:
        return False


def spec_for(urls: list[str], concurrency: int) -> JobSpec:
    return JobSpec(
        job_id="profile",
        urls=urls,
        selectors={
            "sku": "./@data-sku",
            "title": "h2.product-title::text",
            "price": "span.price::text",
            "stock": "p.stock::text",
        },
        config=resolve_config(
            {
                "item_selector": "div.product",
                "max_pages": len(urls),
                "concurrency": concurrency,
                "timeout_seconds": 600,
            }
        ),
        user_agent=bare.USER_AGENT,
    )


def run_engine(
    engine: Any, urls: list[str], concurrency: int, database: Any = None
) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    if database is None:
        sink: Any = FakeSink()
    else:  # what workers.execution.execute builds (progress every 0.5 s, batches of 500)
        from shared import jobs
        from shared.results import ItemSink

        job_id = uuid.uuid4().hex
        database.jobs.insert_one({"_id": job_id, "status": jobs.RUNNING})
        sink = ItemSink(database, job_id, max_pages=len(urls))
        sink.empty = []
    result = engine.run(spec_for(urls, concurrency), sink)
    if database is not None:
        sink.close()
        sink.logs = []
    wall = time.perf_counter() - t0
    if result.error or sink.logs:
        print(f"  engine: {result.error} {sink.logs[:3]}")
    if sink.empty:
        print(f"  engine: {len(sink.empty)} pages rendered without items: {sink.empty[:3]}")
    return wall, result.pages, result.items


def run_bare(settings: Settings, urls: list[str], concurrency: int) -> tuple[float, int, int]:
    pool = get_pool(settings)

    async def job() -> dict:
        async with pool.lease() as lease:
            return await bare.crawl(lease.browser, urls, concurrency, None)

    t0 = time.perf_counter()
    done = pool.submit(job()).result(600)
    wall = time.perf_counter() - t0
    if done["empty"]:
        print(f"  bare: {len(done['empty'])} pages rendered without items: {done['empty'][:3]}")
    return wall, done["pages"], len(done["items"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sink", choices=("fake", "mongo"), default="fake")
    args = parser.parse_args(argv)
    cleanup = Cleanup()
    try:
        site, site_proc = start_site(max(args.pages, 2), cleanup)
        urls = bare.js_urls(site, args.pages)
        settings = Settings().with_(playwright_pages_per_job=max(2, args.concurrency))
        engine = playwright_engine.PlaywrightEngine(settings)
        database = None
        if args.sink == "mongo":
            import pymongo

            from shared import embedded

            data = Path(tempfile.mkdtemp(prefix="profile-pw-"))
            cleanup.push("data", lambda: shutil.rmtree(data, ignore_errors=True))
            mongo = embedded.start_secantus(data / "db")
            cleanup.push("secantusdb", mongo.stop)
            database = pymongo.MongoClient(mongo.url)["profile"]
        cleanup.push("browser pool", close_pool)
        run_engine(engine, urls[:1], 1)  # launches Chromium (not measured)
        run_bare(settings, urls[:1], 1)
        instrument()
        walls: dict[str, list[float]] = defaultdict(list)
        sampler = Sampler(lambda: {"site": site_proc.pid}, 0.5).start()
        for k in range(args.rounds):
            for side in ("engine", "bare"):
                SIDE[0] = side
                if side == "engine":
                    wall, pages, items = run_engine(engine, urls, args.concurrency, database)
                else:
                    wall, pages, items = run_bare(settings, urls, args.concurrency)
                walls[side].append(wall)
                print(
                    f"round {k + 1} {side:6s}: {pages} pages {items} items in {wall:6.2f} s "
                    f"= {pages / wall:5.2f} pages/s",
                    flush=True,
                )
        sampler.stop()
        SIDE[0] = "-"
        print(
            f"\n{args.pages} pages, concurrency {args.concurrency}, {args.rounds} rounds; "
            f"median wall engine {statistics.median(walls['engine']):.2f} s, bare "
            f"{statistics.median(walls['bare']):.2f} s; other processes on the machine "
            f"{sampler.foreign_cpu()['total']:.1f} CPU s"
        )
        names = sorted({n for side in TIMES.values() for n in side})
        print(f"{'call':16s} {'engine n':>8s} {'med ms':>7s} {'sum s':>6s}   "
              f"{'bare n':>6s} {'med ms':>7s} {'sum s':>6s}")  # fmt: skip
        for name in names:
            row = f"{name:16s}"
            for side in ("engine", "bare"):
                values = TIMES[side].get(name, [])
                if values:
                    row += (
                        f" {len(values):8d} {statistics.median(values):7.1f} "
                        f"{sum(values) / 1000:6.2f}  "
                    )
                else:
                    row += f" {'-':>8s} {'':7s} {'':6s}  "
            print(row)
    finally:
        with contextlib.suppress(Exception):
            cleanup.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
