"""Click pagination: a 20-page list paginated by a button without a link (the demo site's
/act/list), crawled by the service's browser engine with `next_click` and by a bare Playwright
script doing the same clicks; the figure is the ratio of their times.

The service side is the Playwright engine as a worker runs it (scrapers/playwright_engine.py:
the warm browser pool, the egress guard, the policy routing, next_click's change detection and
settling), in this process, after one warm-up job, so the browser's launch is not timed. The
bare side launches the same Chromium, then times: a context, the page, and for each page the
items read with parsel, a click, and a wait until the first item changed. Both must find
exactly pages × 10 distinct items.

    run(args) -> {"figures": {...}, "ratios": {"service_seconds / bare_seconds": ...}}

`.venv/bin/python -m bench clicks --save` keeps them for docs/benchmarks.md and the README.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from parsel import Selector

from testing.sites import interactive
from testing.sites.server import SiteServer

TITLE = "Click pagination against bare Playwright"
ABOUT = (
    "A list of 20 pages (`--pages`) paginated by a button without a link (the demo site's "
    "`/act/list`: each click fetches the next page from a JSON API and renders it), crawled "
    "with `next_click` by the service's browser engine as a worker runs it (warm browser, "
    "egress guard, change detection and settling after each click) and by a bare Playwright "
    "script that clicks and waits until the first item changed; both must find every item "
    "once. The time of each crawl, the median of the runs; lower is better."
)
LABELS = {
    "pages": "pages of the list",
    "delay_ms": "API delay a page (ms)",
    "repeat": "runs of each side",
    "service_seconds": "service, `next_click` (s)",
    "bare_seconds": "bare Playwright (s)",
}
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
ITEM = {"id": "./@data-id", "title": "./text()"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `bench clicks`."""
    parser.add_argument("--pages", type=int, default=20, help="pages of the list (default 20)")
    parser.add_argument(
        "--delay-ms", type=int, default=0, help="each page's API answer waits this long"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; median")


class _Sink:
    def __init__(self) -> None:
        self.found: list[dict[str, Any]] = []
        self.logs: list[tuple[str, str]] = []
        self.should_stop = False

    def page(self, url: str, status: int) -> None:
        pass

    def items(self, page_url: str, found: list[dict[str, Any]]) -> None:
        self.found.extend(found)

    def file(self, page_url: str, kind: str, content_type: str, data: bytes) -> bool:
        return False

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))


def _service(engine: Any, url: str, pages: int) -> dict[str, Any]:
    from shared.jobspec import JobSpec, resolve_config

    config = {
        "item_selector": "li.item",
        "next_click": "button#next",
        "wait_for": "li.item",
        "max_pages": pages,
        "obey_robots": False,
        "timeout_seconds": 600,
    }
    spec = JobSpec(job_id="bench-clicks", urls=[url], selectors=ITEM, config=resolve_config(config))
    sink = _Sink()
    started = time.perf_counter()
    result = engine.run(spec, sink)
    seconds = time.perf_counter() - started
    if result.error:
        raise RuntimeError(f"service crawl failed: {result.error}")
    return {"seconds": seconds, "items": len({item["id"] for item in sink.found})}


async def _bare(url: str) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            started = time.perf_counter()
            context = await browser.new_context(service_workers="block")
            page = await context.new_page()
            await page.goto(url, wait_until="load")
            await page.wait_for_selector("li.item")
            ids: set[str] = set()
            while True:
                html = Selector(text=await page.content())
                first = None
                for node in html.css("li.item"):
                    item_id = node.xpath("./@data-id").get()
                    first = first or item_id
                    ids.add(str(item_id))
                    node.xpath("./text()").get()
                button = page.locator("button#next")
                if not await button.count():
                    break
                await button.click()
                await page.wait_for_function(
                    "first => document.querySelector('li.item').dataset.id !== first", arg=first
                )
            await context.close()
            return {"seconds": time.perf_counter() - started, "items": len(ids)}
        finally:
            await browser.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both crawls `args.repeat` times on a local site; medians and service / bare."""
    from scrapers.playwright_engine import PlaywrightEngine
    from shared.settings import Settings

    pages = int(args.pages)
    expected = pages * interactive.LIST_PER_PAGE
    engine = PlaywrightEngine(Settings.from_env({}, env="test"))
    service: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    try:
        with SiteServer(pages=1) as site:
            url = site.url_for(f"/act/list?pages={pages}&delay={int(args.delay_ms)}")
            _service(engine, site.url_for("/act/list?pages=2"), 2)  # warm-up: the browser starts
            for _ in range(int(args.repeat)):
                service.append(_service(engine, url, pages))
                bare.append(asyncio.run(_bare(url)))
    finally:
        engine.close()
    for side, runs in (("service", service), ("bare", bare)):
        if any(r["items"] != expected for r in runs):
            raise RuntimeError(f"{side}: {[r['items'] for r in runs]} items, not {expected}")
    service_s = round(statistics.median(r["seconds"] for r in service), 3)
    bare_s = round(statistics.median(r["seconds"] for r in bare), 3)
    return {
        "figures": {
            "pages": pages,
            "delay_ms": int(args.delay_ms),
            "repeat": int(args.repeat),
            "service_seconds": service_s,
            "bare_seconds": bare_s,
        },
        "ratios": {"service_seconds / bare_seconds": round(service_s / bare_s, 2)},
        "notes": [f"{expected} items found by each run of either side, each once"],
    }


if __name__ == "__main__":
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    print(json.dumps(run(parser.parse_args()), indent=2))
