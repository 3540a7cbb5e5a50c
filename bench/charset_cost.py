"""The browser path's cost of reading pages alike in both engines (scrapers/charsets.py).

One-page Playwright jobs in this process, warm Chromium, the demo site in threads.

Times `PlaywrightEngine.run` for a page whose Content-Type names its charset (every document
still pauses once at its response headers) and one that names none (its body is read and handed
back with a charset), each with the charset handling on and off (`charsets.watch` a no-op, as
before it existed), all four interleaved so that a busy machine weighs on each alike; prints the
median and p95 of each. Then the navigation alone: `page.goto` of the same two pages in two tabs
of one context (the engine's routing on), one tab watched and one not, interleaved: the p50 of
each, which shows the pause at the response headers without the job's other costs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from bench.common import percentile
from scrapers import charsets
from shared.jobspec import JobSpec, resolve_config
from shared.settings import Settings
from testing.sites.server import SiteServer

PAGES = {"labelled": "/catalog/page/1", "unlabelled": "/kinds/charset/unlabelled"}
WATCH = charsets.watch


async def _off(page: object, max_bytes: int) -> None:
    """No charset handling: the browser path as it was."""


class _Sink:
    should_stop = False

    def page(self, url: str, status: int) -> None:
        pass

    def items(self, page_url: str, found: list[dict[str, Any]], key: str | None = None) -> None:
        pass

    def file(self, page_url: str, kind: str, content_type: str, data: bytes) -> bool:
        return False

    def log(self, level: str, message: str) -> None:
        pass


async def navigations(site: SiteServer, rounds: int) -> dict[str, list[float]]:
    """`page.goto` times (ms) of each page in a watched tab and in a tab left alone."""
    from playwright.async_api import async_playwright

    from scrapers.rendering import _block_heavy

    times: dict[str, list[float]] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=Settings().chromium_path)
        context = await browser.new_context()
        await context.route("**/*", _block_heavy)
        tabs = {"off": await context.new_page(), "on": await context.new_page()}
        await WATCH(tabs["on"], 10_485_760)
        for round_ in range(rounds + 5):  # five warm-up rounds, not counted
            for name, path in PAGES.items():
                for state, tab in tabs.items():
                    started = time.perf_counter()
                    await tab.goto(site.url_for(path))
                    if round_ >= 5:
                        elapsed = (time.perf_counter() - started) * 1000
                        times.setdefault(f"{name}, {state}", []).append(elapsed)
        await browser.close()
    return times


TITLE = "Reading pages alike in both engines: the browser's cost"
ABOUT = (
    "The charset handling of the browser path (`scrapers/charsets.py`: every document pauses "
    "once at its response headers; a page whose `Content-Type` names no charset is read and "
    "handed back with one). `page.goto` of a labelled and an unlabelled page in two tabs of one "
    "context, one watched and one not, interleaved; then one-page Playwright jobs in this "
    "process (warm Chromium) with the handling on and off, interleaved."
)
LABELS = {
    "navigation_pause_labelled_ms": "the pause, labelled page: navigation p50 on − off, ms",
    "navigation_pause_unlabelled_ms": "the pause, unlabelled page (read, handed on), ms",
    "navigation_p50_ms": "navigation p50, ms",
    "one_page_job_p50_ms": "one-page browser job p50, ms",
    "one_page_job_p95_ms": "one-page browser job p95, ms",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=30, help="rounds of the four job variants")
    parser.add_argument("--navigations", type=int, default=100, help="rounds of navigations")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from scrapers.playwright_engine import PlaywrightEngine

    with SiteServer() as site:
        navs = asyncio.run(navigations(site, args.navigations))
    nav_p50 = {name: round(statistics.median(values), 1) for name, values in navs.items()}
    for name, value in nav_p50.items():
        print(f"{name:15} navigation:   p50 {value:.1f} ms")
    engine = PlaywrightEngine(Settings())
    variants = [(name, path, on) for name, path in PAGES.items() for on in (False, True)]
    times: dict[str, list[float]] = {}
    try:
        with SiteServer() as site:
            for round_ in range(args.jobs + 2):  # two warm-up rounds, not counted
                for name, path, on in variants:
                    charsets.watch = WATCH if on else _off  # type: ignore[assignment]
                    spec = JobSpec(
                        "bench",
                        [site.url_for(path)],
                        {"title": "title::text"},
                        resolve_config({"obey_robots": False, "max_pages": 1}),
                        user_agent="bench",
                    )
                    started = time.perf_counter()
                    result = engine.run(spec, _Sink())
                    elapsed = (time.perf_counter() - started) * 1000
                    assert result.error is None and result.items == 1, result
                    if round_ >= 2:
                        times.setdefault(f"{name}, {'on' if on else 'off'}", []).append(elapsed)
    finally:
        charsets.watch = WATCH  # type: ignore[assignment]
        engine.close()
    p50 = {name: round(statistics.median(v), 1) for name, v in times.items()}
    p95 = {name: round(percentile(v, 95), 1) for name, v in times.items()}
    for name in times:
        print(f"{name:15} one-page job: p50 {p50[name]:.1f} ms, p95 {p95[name]:.1f} ms")
    figures = {
        "navigation_pause_labelled_ms": round(
            nav_p50["labelled, on"] - nav_p50["labelled, off"], 1
        ),
        "navigation_pause_unlabelled_ms": round(
            nav_p50["unlabelled, on"] - nav_p50["unlabelled, off"], 1
        ),
        "navigation_p50_ms": nav_p50,
        "one_page_job_p50_ms": p50,
        "one_page_job_p95_ms": p95,
    }
    return {"figures": figures, "ratios": {}}
