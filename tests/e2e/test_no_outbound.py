"""The service makes no outbound request of its own: a crawl of a page that sets cookies
(Scrapy's cookie handling asks tldextract for the public-suffix list) reaches nothing outside
loopback. Every Stack checks this when it stops (testing/egress_guard); this test makes the
cookie path explicit."""

from __future__ import annotations

import uuid

import pytest

from testing.helpers import Stack
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_cookie_setting_page_makes_no_request_outside_loopback(redis_url, mongo_url, tmp_path):
    stack = Stack(redis_url, mongo_url, f"egress_{uuid.uuid4().hex[:8]}", tmp_path)
    try:
        stack.start(api=True, queues=("scrapy",))
        headers = stack.register()
        with SiteServer(pages=2) as site:
            job = stack.submit(
                headers,
                url=site.url_for("/set-cookie"),
                engine="scrapy",
                selectors={"title": "title::text"},
                config={"follow_links": True, "max_pages": 3},
            )
            done = stack.wait_job(job["id"], headers)
        assert done["status"] == "completed", done
        assert stack.outbound() == []
    finally:
        stack.stop()


def test_a_proxy_in_the_workers_environment_is_not_used_for_crawls(redis_url, mongo_url, tmp_path):
    from testing.tripwire import Tripwire

    stack = Stack(redis_url, mongo_url, f"envproxy_{uuid.uuid4().hex[:8]}", tmp_path)
    with Tripwire() as wire:
        try:
            # an environment proxy would connect on the crawl's behalf: the target policy
            # would see only the proxy, so crawls never use one (pool proxies are per job)
            stack.start(api=True, queues=("scrapy",), http_proxy=wire.url, HTTP_PROXY=wire.url)
            headers = stack.register()
            with SiteServer(pages=2) as site:
                job = stack.submit(
                    headers,
                    url=site.url_for("/catalog/"),
                    engine="scrapy",
                    selectors={"sku": "./@data-sku"},
                    config={
                        "item_selector": "div.product",
                        "follow_links": True,
                        "link_selector": "li.next a",
                    },
                )
                done = stack.wait_job(job["id"], headers)
            assert done["status"] == "completed" and done["items_scraped"] == 20, done
            assert wire.hits == 0
        finally:
            stack.stop()
