"""Two users, one site, two worker processes: the site never sees more than DOMAIN_CONCURRENCY
requests at once from the whole fleet, the other user's job still gets its turns, and the
robots.txt Crawl-delay spaces the requests of every job (measured on the site's side)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from testing.helpers import Stack
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LIMIT = 3


@pytest.fixture(scope="module")
def fleet(redis_url, mongo_url, tmp_path_factory) -> Iterator[Stack]:
    """The API and two scrapy worker processes of two job slots each, sharing DOMAIN_CONCURRENCY."""
    name = f"e2e_polite_{uuid.uuid4().hex[:10]}"
    stack = Stack(redis_url, mongo_url, name, tmp_path_factory.mktemp("fleet"))
    try:
        stack.start(api=True, queues=(), DOMAIN_CONCURRENCY=str(LIMIT))
        stack.start_worker("scrapy", concurrency=2, name="worker-one")
        stack.start_worker("scrapy", concurrency=2, name="worker-two")
        yield stack
    finally:
        stack.stop()


def crawl(site: SiteServer, pages: int, **config) -> dict:
    return {
        "url": site.url_for("/catalog/"),
        "engine": "scrapy",
        "selectors": {"title": "h1::text"},
        "config": {
            "follow_links": True,
            "link_selector": "a.detail, li.next a",
            "max_pages": pages,
            "concurrency": 8,
            **config,
        },
    }


def test_many_jobs_share_the_site_limit_and_another_user_still_gets_turns(fleet):
    alice, bob = fleet.register(), fleet.register()
    with SiteServer(pages=5, items_per_page=10, delay=0.2) as site:
        heavy = [fleet.submit(alice, **crawl(site, 30)) for _ in range(3)]
        light = fleet.submit(bob, **crawl(site, 8))
        done_light = fleet.wait_job(light["id"], bob, timeout=120)
        still_running = [fleet.job(job["id"], alice)["status"] for job in heavy]
        done_heavy = [fleet.wait_job(job["id"], alice, timeout=180) for job in heavy]
        peak = site.max_in_flight
    assert done_light["status"] == "completed" and done_light["pages_crawled"] == 8
    assert all(job["status"] == "completed" for job in done_heavy), done_heavy
    assert all(job["pages_crawled"] == 30 for job in done_heavy)
    # 4 jobs of 8 requests each at once; the site saw the fleet's limit, never more
    assert peak == LIMIT
    # bob's job got its turns while alice's queue was long: it did not wait for hers to end
    assert "running" in still_running, still_running


def test_robots_crawl_delay_spaces_every_jobs_requests(fleet):
    alice, bob = fleet.register(), fleet.register()
    delay = 0.5
    with SiteServer(pages=3, items_per_page=2, crawl_delay=delay) as site:
        jobs = [
            (alice, fleet.submit(alice, **crawl(site, 4, obey_robots=True))),
            (bob, fleet.submit(bob, **crawl(site, 4, obey_robots=True))),
        ]
        done = [fleet.wait_job(job["id"], who, timeout=120) for who, job in jobs]
        arrivals = [
            at
            for path, at in zip(site.requests, site.arrivals, strict=True)
            if path != "/robots.txt"
        ]
    assert all(job["status"] == "completed" for job in done), done
    assert len(arrivals) == 8
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    # spaced by the delay, give or take the jitter between a grant and the request's arrival
    # (one request late makes one gap short and the next long: the span keeps the sum)
    assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 1) * delay - 0.2, gaps
    assert min(gaps) >= delay / 2, gaps
