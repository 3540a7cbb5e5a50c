"""Jobs through proxies with real workers: pool rotation, bans, an explicit proxy, an empty pool."""

from __future__ import annotations

import pytest

from deploy import embedded
from shared.proxies import ProxyRepository
from testing.helpers import Stack, closed_port
from testing.proxy_server import ForwardProxy
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def proxy_stack(redis_url, mongo_url, tmp_path_factory):
    stack = Stack(
        redis_url, mongo_url, f"prx_{embedded.free_port()}", tmp_path_factory.mktemp("prx")
    )
    try:
        stack.start(
            api=True,
            queues=("scrapy",),
            PROXY_COOLDOWN_SECONDS="600",
            ALLOW_JOB_PROXY_URLS="true",  # the explicit-proxy test names its own proxy
        )
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def pool(proxy_stack):
    database = proxy_stack.database()
    database.proxies.delete_many({})
    return ProxyRepository(database)


def catalog(site: SiteServer, proxy: str, engine: str = "scrapy", **config) -> dict:
    return {
        "url": f"{site.url}/catalog/",
        "engine": engine,
        "selectors": {"title": "h2.product-title::text"},
        "config": {
            "item_selector": "div.product",
            "follow_links": True,
            "link_selector": "li.next a::attr(href)",
            "proxy": proxy,
            **config,
        },
    }


def relayed(proxy: ForwardProxy, site: SiteServer) -> list[str]:
    return [url for url in proxy.hits if url.startswith(site.url)]


def test_pool_job_sends_every_request_through_the_proxies_spread_over_both(proxy_stack, pool):
    headers = proxy_stack.register()
    with SiteServer(pages=6, items_per_page=5) as site, ForwardProxy() as a, ForwardProxy() as b:
        ids = [pool.add(a.url)["_id"], pool.add(b.url)["_id"]]
        job = proxy_stack.submit(headers, **catalog(site, "pool"))
        done = proxy_stack.wait_job(job["id"], headers)
        assert done["status"] == "completed", done
        assert done["items_scraped"] == 30
        through = relayed(a, site) + relayed(b, site)
        assert len(through) == len(site.requests)  # nothing went direct
        assert relayed(a, site) and relayed(b, site)  # both got some
    docs = [pool.get(i) for i in ids]
    assert sum(d["success_count"] for d in docs) == len(through)
    assert all(d["failure_count"] == 0 and d["avg_latency_ms"] is not None for d in docs)


@pytest.mark.parametrize("ban_signal", ["forbid", "captcha"])
def test_dead_and_banning_proxies_are_cooled_down_and_the_job_completes(
    proxy_stack, pool, ban_signal
):
    headers = proxy_stack.register()
    with (
        SiteServer(pages=4, items_per_page=5) as site,
        ForwardProxy() as good,
        ForwardProxy(ban_signal) as forbidding,
        closed_port() as refusing,
    ):
        dead = pool.add(f"http://127.0.0.1:{refusing}")["_id"]
        banning = pool.add(forbidding.url)["_id"]
        healthy = pool.add(good.url)["_id"]
        job = proxy_stack.submit(headers, **catalog(site, "pool"))
        done = proxy_stack.wait_job(job["id"], headers)
        assert done["status"] == "completed", done
        assert done["items_scraped"] == 20
        assert len(relayed(good, site)) == len(site.requests)
    for proxy in (dead, banning):
        doc = pool.get(proxy)
        assert doc["status"] in ("cooldown", "banned"), doc
        assert doc["failure_count"] >= 1 and doc["ban_count"] >= 1 and doc["last_error"]
    assert pool.get(healthy)["status"] == "active"
    assert pool.get(healthy)["success_count"] == len(site.requests)


def test_explicit_proxy_url_routes_every_request_through_it(proxy_stack, pool):
    headers = proxy_stack.register()
    with SiteServer(pages=3, items_per_page=2) as site, ForwardProxy() as proxy:
        job = proxy_stack.submit(headers, **catalog(site, proxy.url))
        done = proxy_stack.wait_job(job["id"], headers)
        assert done["status"] == "completed" and done["items_scraped"] == 6, done
        assert len(relayed(proxy, site)) == len(site.requests) >= 3


def test_job_fails_with_no_proxies_when_every_proxy_is_banned(proxy_stack, pool):
    headers = proxy_stack.register()
    with SiteServer(pages=2) as site, closed_port() as one, closed_port() as two:
        for port in (one, two):
            pool.add(f"http://127.0.0.1:{port}")
        job = proxy_stack.submit(headers, **catalog(site, "pool"))
        done = proxy_stack.wait_job(job["id"], headers)
        assert site.requests == []
    assert done["status"] == "failed", done
    assert done["error"] == {
        "type": "no_proxies",
        "message": "every proxy in the pool is banned or cooling down",
    }
    assert {p["status"] for p in pool.all()} <= {"cooldown", "banned"}


def test_job_with_an_empty_pool_fails_with_no_proxies(proxy_stack, pool):
    headers = proxy_stack.register()
    with SiteServer(pages=1) as site:
        job = proxy_stack.submit(headers, **catalog(site, "pool"))
        done = proxy_stack.wait_job(job["id"], headers)
    assert done["status"] == "failed" and done["error"]["type"] == "no_proxies"


@pytest.mark.browser
def test_playwright_job_renders_through_a_pool_proxy(proxy_stack, pool):
    if "worker-playwright" not in proxy_stack.procs:
        proxy_stack.start_worker("playwright")
    headers = proxy_stack.register()
    with SiteServer(pages=2, items_per_page=3) as site, ForwardProxy() as proxy:
        proxy_id = pool.add(proxy.url)["_id"]
        job = proxy_stack.submit(headers, **catalog(site, "pool", engine="playwright"))
        done = proxy_stack.wait_job(job["id"], headers, timeout=90)
        assert done["status"] == "completed" and done["items_scraped"] == 6, done
        assert f"{site.url}/catalog/" in proxy.hits
        assert len(relayed(proxy, site)) == len(site.requests)
    doc = pool.get(proxy_id)
    assert doc["success_count"] >= 2 and doc["failure_count"] == 0


@pytest.mark.browser
def test_playwright_job_moves_to_another_pool_proxy_when_its_proxy_is_banned(proxy_stack, pool):
    if "worker-playwright" not in proxy_stack.procs:
        proxy_stack.start_worker("playwright")
    headers = proxy_stack.register()
    with (
        SiteServer(pages=3, items_per_page=2) as site,
        ForwardProxy() as good,
        ForwardProxy("forbid") as forbidding,
    ):
        banning = pool.add(forbidding.url)["_id"]
        healthy = pool.add(good.url)["_id"]
        pool.proxies.update_one({"_id": healthy}, {"$set": {"use_seq": 10**9}})  # picked second
        job = proxy_stack.submit(headers, **catalog(site, "pool", engine="playwright"))
        done = proxy_stack.wait_job(job["id"], headers, timeout=90)
        assert done["status"] == "completed" and done["items_scraped"] == 6, done
        assert forbidding.hits and len(relayed(good, site)) >= 3
    lines = proxy_stack.database().logs.find({"job_id": job["id"]})
    assert any("pool proxy banned" in line["message"] for line in lines)
    assert pool.get(banning)["status"] in ("cooldown", "banned")
