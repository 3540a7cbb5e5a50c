"""A job whose selector never finishes fails on time, its worker process is replaced, and the
next job on the same worker runs normally."""

from __future__ import annotations

import uuid

import pytest

from testing.helpers import Stack, wait_for
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Valid XPath 1.0, but cubic in the page's elements: hours on a 4,000-element page.
CUBIC = "//*[count(//*[count(//*) >= 0]) >= 0]"


def test_a_stuck_crawl_fails_on_time_and_the_next_job_runs_on_a_fresh_process(
    redis_url, mongo_url, tmp_path
):
    stack = Stack(redis_url, mongo_url, f"stuck_{uuid.uuid4().hex[:8]}", tmp_path)
    try:
        stack.start(api=True, queues=("scrapy",), ENGINE_STUCK_GRACE_SECONDS="2")
        headers = stack.register()
        before = stack.children("worker-scrapy")
        with SiteServer(pages=2, items_per_page=700) as site:
            stuck = stack.submit(
                headers,
                url=site.url_for("/catalog/"),
                engine="scrapy",
                selectors={"x": CUBIC},
                config={"timeout_seconds": 2, "obey_robots": False},
            )
            done = stack.wait_job(stuck["id"], headers, timeout=60)
            assert done["status"] == "failed" and done["error"]["type"] == "timeout", done
            wait_for(
                lambda: (lambda now: now and not set(now) & set(before))(
                    stack.children("worker-scrapy")
                ),
                30,
                message="a fresh worker process",
            )
            normal = stack.submit(
                headers,
                url=site.url_for("/catalog/"),
                engine="scrapy",
                selectors={"sku": "./@data-sku"},
                config={"item_selector": "div.product", "max_pages": 1},
            )
            finished = stack.wait_job(normal["id"], headers, timeout=30)
        assert finished["status"] == "completed" and finished["items_scraped"] == 700
        assert stack.job(stuck["id"], headers)["status"] == "failed"  # the re-delivery did nothing
    finally:
        stack.stop()
