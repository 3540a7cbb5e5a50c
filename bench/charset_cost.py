"""The cost of reading pages alike in both engines (scrapers/charsets.py) on the browser path:
one-page Playwright jobs in this process, warm Chromium, the demo site in threads.

    .venv/bin/python bench/run.py --only charset [--jobs 30] [--navigations 100]

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
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scrapers import charsets  # noqa: E402
from scrapers.playwright_engine import PlaywrightEngine  # noqa: E402
from shared.jobspec import JobSpec, resolve_config  # noqa: E402
from shared.settings import Settings  # noqa: E402
from testing.sites.server import SiteServer  # noqa: E402

PAGES = {"labelled": "/catalog/page/1", "unlabelled": "/kinds/charset/unlabelled"}
WATCH = charsets.watch


async def _off(page: object, max_bytes: int) -> None:
    """No charset handling: the browser path as it was."""


class _Sink:
    should_stop = False

    def page(self, url: str, status: int) -> None:
        pass

    def items(self, url: str, found: list) -> None:
        pass

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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--navigations", type=int, default=100)
    args = parser.parse_args()
    with SiteServer() as site:
        for name, values in asyncio.run(navigations(site, args.navigations)).items():
            print(f"{name:15} navigation:   p50 {statistics.median(values):.1f} ms")
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
        engine.close()
    for name, values in times.items():
        values.sort()
        p95 = values[max(0, round(len(values) * 0.95) - 1)]
        print(f"{name:15} one-page job: p50 {statistics.median(values):.1f} ms, p95 {p95:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
