"""Bare Playwright baseline: one async Playwright script in a fresh interpreter.

    python -m bench.bare_playwright --site http://127.0.0.1:PORT --pages 60 --concurrency 2

Run by `python -m bench playwright`.

What the service's engine does for a job, written as a minimal script (no pool, no sink, no
database), so the two can be compared at the same concurrency:

* Chromium /usr/bin/chromium with the same launch arguments as scrapers/browser_pool.py;
* one warm-up context rendering one page (the service's warm-up job does the same), then the
  timed part: a fresh context with the same options (user agent, service workers blocked), images,
  media and fonts aborted by a context route, robots.txt fetched once through the context;
* `concurrency` tabs, each reused from page to page, taking URLs from one shared list;
* per page: goto(wait_until="load"), then wait until the tab made no request for 0.15 s (at most
  3 s), as PlaywrightEngine does; page.content() parsed with parsel for the same fields.

The timed part runs from new_context() to the context's close(). Prints one line on stdout:
RESULT {json}: pages, items, distinct SKUs, seconds, per-page phase medians (ms).
"""

from __future__ import annotations

import time

T_PROCESS = time.perf_counter()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from urllib.robotparser import RobotFileParser  # noqa: E402

from parsel import Selector  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402

from bench.shape import USER_AGENT, js_urls  # noqa: E402

T_IMPORTED = time.perf_counter()

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [  # scrapers/browser_pool.py LAUNCH_ARGS
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
BLOCKED = frozenset({"image", "media", "font"})
SETTLE_QUIET = 0.15
SETTLE_CAP = 3.0
ITEM = "div.product"
FIELDS = {  # kind, query
    "sku": ("xpath", "./@data-sku"),
    "title": ("css", "h2.product-title::text"),
    "price": ("css", "span.price::text"),
    "stock": ("css", "p.stock::text"),
}


async def block_heavy(route) -> None:
    if route.request.resource_type in BLOCKED:
        await route.abort()
    else:
        await route.continue_()


class Network:
    """Requests in flight in one tab (the same wait as the engine's _Network.settle)."""

    def __init__(self, page) -> None:
        self.pending: set = set()
        self.changed = asyncio.Event()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request) -> None:
        self.pending.add(request)
        self.changed.set()

    def _ended(self, request) -> None:
        self.pending.discard(request)
        self.changed.set()

    async def settle(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_CAP
        while (left := deadline - loop.time()) > 0:
            self.changed.clear()
            idle = not self.pending
            try:
                await asyncio.wait_for(
                    self.changed.wait(), min(SETTLE_QUIET, left) if idle else left
                )
            except TimeoutError:
                if idle:
                    return


def extract(html: str, url: str) -> list[dict]:
    page = Selector(text=html, base_url=url, type="html")
    items = []
    for box in page.css(ITEM):
        item = {}
        for name, (kind, query) in FIELDS.items():
            found = box.xpath(query) if kind == "xpath" else box.css(query)
            values = [v.strip() for v in found.getall()]
            values = [v for v in values if v]
            item[name] = (values[0] if len(values) == 1 else values) if values else None
        items.append(item)
    return items


async def crawl(browser, urls: list[str], concurrency: int, phases: dict | None) -> dict:
    """Render `urls` in a fresh context with `concurrency` tabs; items and failures."""
    context = await browser.new_context(user_agent=USER_AGENT, service_workers="block")
    items: list[dict] = []
    failed: list[str] = []
    empty: list[str] = []  # rendered, but no item in the DOM when it was read
    pages_ok = 0
    try:
        await context.route("**/*", block_heavy)
        robots = RobotFileParser()
        origin = urls[0].split("/", 3)[:3]
        answer = await context.request.get("/".join(origin) + "/robots.txt", timeout=10_000)
        robots.parse((await answer.text()).splitlines() if answer.status == 200 else [])
        todo = list(reversed(urls))

        async def worker() -> None:
            nonlocal pages_ok
            page = await context.new_page()
            network = Network(page)
            try:
                while todo:
                    url = todo.pop()
                    if not robots.can_fetch(USER_AGENT, url):
                        failed.append(f"robots: {url}")
                        continue
                    t0 = time.perf_counter()
                    response = await page.goto(url, wait_until="load", timeout=180_000)
                    t1 = time.perf_counter()
                    if response is None or not 200 <= response.status < 300:
                        failed.append(f"HTTP {response.status if response else '?'}: {url}")
                        continue
                    await network.settle()
                    t2 = time.perf_counter()
                    html = await page.content()
                    t3 = time.perf_counter()
                    found = extract(html, page.url)
                    t4 = time.perf_counter()
                    items.extend(found)
                    pages_ok += 1
                    if not found:
                        empty.append(url)
                    if phases is not None:
                        for key, a, b in (
                            ("goto_load", t0, t1),
                            ("settle", t1, t2),
                            ("content", t2, t3),
                            ("extract", t3, t4),
                            ("page_total", t0, t4),
                        ):
                            phases.setdefault(key, []).append((b - a) * 1000)
            finally:
                await page.close()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await context.close()
    return {"pages": pages_ok, "items": items, "failed": failed, "empty": empty}


async def amain(args: argparse.Namespace) -> dict:
    urls = js_urls(args.site, 1, args.pages)
    async with async_playwright() as pw:
        t0 = time.perf_counter()
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS, env=dict(os.environ)
        )
        t1 = time.perf_counter()
        warm = await crawl(browser, urls[:1], 1, None)  # like the service's warm-up job
        t2 = time.perf_counter()
        phases: dict[str, list[float]] = {}
        cpu0 = time.process_time()
        t3 = time.perf_counter()
        done = await crawl(browser, urls, args.concurrency, phases)
        t4 = time.perf_counter()
        cpu1 = time.process_time()
        await browser.close()
    items = done["items"]
    return {
        "pages": done["pages"],
        "items": len(items),
        "distinct_skus": len({i.get("sku") for i in items}),
        "failed": done["failed"][:5],
        "empty_pages": done["empty"][:5],
        "empty_count": len(done["empty"]),
        "warmup_items": len(warm["items"]),
        "concurrency": args.concurrency,
        "import_s": round(T_IMPORTED - T_PROCESS, 3),
        "launch_s": round(t1 - t0, 3),
        "warmup_s": round(t2 - t1, 3),
        "crawl_s": round(t4 - t3, 3),
        "crawl_cpu_s_python": round(cpu1 - cpu0, 3),
        "phase_median_ms": {k: round(statistics.median(v), 1) for k, v in phases.items()},
        "phase_sum_ms": {k: round(sum(v), 1) for k, v in phases.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--site", required=True)
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    result = asyncio.run(amain(args))
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
