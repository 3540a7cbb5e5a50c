"""The browser engine takes the fleet-wide site slots (shared/politeness.py) around each page
navigation: the site's concurrency and the robots.txt Crawl-delay, as the site measures them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from scrapers.playwright_engine import PlaywrightEngine
from shared.jobspec import JobSpec, resolve_config
from shared.settings import Settings
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

if not os.access(Settings().chromium_path, os.X_OK):
    pytest.skip("no Chromium", allow_module_level=True)


class Sink:
    def __init__(self) -> None:
        self.pages: list[tuple[str, int]] = []

    def page(self, url: str, status: int) -> None:
        self.pages.append((url, status))

    def items(self, page_url: str, found: list[dict[str, Any]]) -> None:
        pass

    def log(self, level: str, message: str) -> None:
        pass

    should_stop = False


@pytest.fixture(scope="module")
def engine(redis_url, tmp_path_factory) -> Iterator[PlaywrightEngine]:
    from testing.helpers import redis_database

    with redis_database(redis_url, tmp_path_factory.mktemp("pol")) as url:
        engine = PlaywrightEngine(Settings.from_env({}, redis_url=url, domain_concurrency=1))
        try:
            yield engine
        finally:
            engine.close()


def crawl(site: SiteServer, **config: Any) -> JobSpec:
    return JobSpec(
        job_id="polite",
        urls=[site.url_for("/catalog/")],
        selectors={"title": "h1::text"},
        config=resolve_config(
            {
                "follow_links": True,
                "link_selector": "a.detail",
                "max_pages": 6,
                "concurrency": 4,
                **config,
            }
        ),
        user_agent="ScrapeMasterTest",
    )


def test_browser_pages_keep_to_the_sites_shared_limit(engine):
    with SiteServer(pages=1, items_per_page=5, delay=0.3) as site:
        sink = Sink()
        result = engine.run(crawl(site, obey_robots=False), sink)
        peak = site.max_in_flight
    assert result.error is None and len(sink.pages) == 6
    assert peak == 1  # DOMAIN_CONCURRENCY=1 though the job opens four tabs


def test_browser_pages_keep_the_robots_crawl_delay(engine):
    delay = 0.5
    with SiteServer(pages=1, items_per_page=3, crawl_delay=delay) as site:
        sink = Sink()
        result = engine.run(crawl(site, obey_robots=True, max_pages=4), sink)
        arrivals = [
            at
            for path, at in zip(site.requests, site.arrivals, strict=True)
            if path != "/robots.txt"
        ]
    assert result.error is None and len(sink.pages) == 4
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert len(arrivals) == 4
    # spaced by the delay, give or take the jitter between a grant and the request's arrival
    # (one request late makes one gap short and the next long: the span keeps the sum)
    assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 1) * delay - 0.2, gaps
    assert min(gaps) >= delay / 2, gaps
