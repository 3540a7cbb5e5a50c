"""Pool proxies are infrastructure, the targets behind them are still judged: with a pool proxy
on loopback under PRIVATE_TARGETS=block (the site allow-listed, neither the proxy nor the
tripwire), both engines crawl the site through the proxy and never reach the tripwire through
it: not by a link, a redirect, robots.txt, or (in Chromium) any sub-resource, frame, fetch,
XHR, beacon or WebSocket."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from shared.proxies import ProxyRepository
from testing.helpers import Stack
from testing.proxy_server import ForwardProxy
from testing.sites.server import SiteServer
from testing.tripwire import Tripwire

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ENGINES = ["scrapy", pytest.param("playwright", marks=pytest.mark.browser)]


@pytest.fixture(scope="module")
def site() -> Iterator[SiteServer]:
    with SiteServer(pages=3) as server:
        yield server


@pytest.fixture(scope="module")
def wire() -> Iterator[Tripwire]:
    with Tripwire() as tripwire:
        yield tripwire


@pytest.fixture(scope="module")
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as forward:
        yield forward


@pytest.fixture(scope="module")
def stack(redis_url, mongo_url, tmp_path_factory, site, proxy) -> Iterator[Stack]:
    stack = Stack(
        redis_url, mongo_url, f"ppol_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("ppol")
    )
    try:
        stack.start(
            api=True,
            queues=("scrapy", "playwright"),
            PRIVATE_TARGETS="block",
            TARGET_ALLOWLIST=f"127.0.0.1:{site.port}",  # not the proxy's port
            PROXY_COOLDOWN_SECONDS="600",
        )
        ProxyRepository(stack.database()).add(proxy.url)  # the admin's pool
        yield stack
    finally:
        stack.stop()


def logs(stack: Stack, job_id: str, headers: dict) -> str:
    answer = requests.get(stack.url(f"/jobs/{job_id}/logs"), headers=headers, timeout=10)
    return "\n".join(line["message"] for line in answer.json()["logs"])


def through_proxy_to(proxy: ForwardProxy, port: int) -> list[str]:
    return [url for url in proxy.hits if urlsplit(url).port == port]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_allowed_site_crawls_through_a_loopback_pool_proxy(stack, site, proxy, engine):
    headers = stack.register()
    path = "/js/catalog/" if engine == "playwright" else "/catalog/"
    job = stack.submit(
        headers,
        url=site.url_for(path),
        engine=engine,
        selectors={"sku": "./@data-sku"},
        config={
            "item_selector": "div.product",
            "follow_links": True,
            "link_selector": "li.next a",
            "proxy": "pool",
            "obey_robots": True,
        },
    )
    done = stack.wait_job(job["id"], headers, timeout=120)
    assert done["status"] == "completed" and done["items_scraped"] == 30, done
    assert site.url_for(path) in proxy.hits  # through the proxy, not around it
    assert site.url_for("/robots.txt") in proxy.hits


@pytest.mark.parametrize("engine", ENGINES)
def test_links_and_sub_resources_to_a_blocked_port_never_go_through_the_proxy(
    stack, site, proxy, wire, engine
):
    headers = stack.register()
    job = stack.submit(
        headers,
        url=site.url_for(f"/trap?to={wire.url}"),
        engine=engine,
        selectors={"ok": "p.ok::text"},
        config={
            "follow_links": True,
            "link_selector": "a::attr(href)",
            "proxy": "pool",
            "obey_robots": False,
        },
    )
    done = stack.wait_job(job["id"], headers, timeout=120)
    assert done["status"] == "completed" and done["items_scraped"] == 1, done
    assert site.url_for(f"/trap?to={wire.url}") in proxy.hits
    assert f"blocked target {wire.url}" in logs(stack, job["id"], headers) or (
        f"blocked target 127.0.0.1:{wire.port}" in logs(stack, job["id"], headers)
    )
    assert through_proxy_to(proxy, wire.port) == [] and wire.hits == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_a_redirect_to_a_blocked_port_through_the_proxy_fails_the_page(
    stack, site, proxy, wire, engine
):
    headers = stack.register()
    job = stack.submit(
        headers,
        url=site.url_for(f"/redirect?to={wire.url}"),
        engine=engine,
        config={"proxy": "pool", "obey_robots": False},
    )
    done = stack.wait_job(job["id"], headers, timeout=120)
    assert done["status"] == "failed" and done["error"]["type"] == "blocked_target", done
    assert "loopback" in done["error"]["message"]
    assert through_proxy_to(proxy, wire.port) == [] and wire.hits == 0


def test_the_pool_proxy_is_never_banned_for_a_refused_target(stack, proxy):
    pool = ProxyRepository(stack.database())
    (doc,) = [p for p in pool.proxies.find({}) if p["url"] == proxy.url]
    assert doc["status"] == "active" and doc["failure_count"] == 0, doc


def test_a_direct_request_to_the_pool_proxy_is_still_a_blocked_target(stack, site, proxy):
    """The exemption is for connections *to* the proxy on a job's behalf through it, not for
    a job that names the proxy's address as its target."""
    headers = stack.register()
    for _ in range(2):  # twice: by then the worker has surely exempted the proxy
        job = stack.submit(
            headers,
            url=site.url_for(f"/trap?to={proxy.url}/"),
            engine="scrapy",
            selectors={"ok": "p.ok::text"},
            config={"follow_links": True, "link_selector": "a::attr(href)", "obey_robots": False},
        )
        done = stack.wait_job(job["id"], headers, timeout=120)
        assert done["status"] == "completed" and done["items_scraped"] == 1, done
        assert "blocked target" in logs(stack, job["id"], headers)
    assert [hit for hit in proxy.hits if not hit.startswith("http")] == []  # no direct request
