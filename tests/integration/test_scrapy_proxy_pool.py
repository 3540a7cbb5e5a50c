"""Scrapy through the proxy pool in MongoDB: the reactor thread never waits for the store, and a
ban is retried through another proxy with Scrapy's own get_retry_request."""

from __future__ import annotations

import threading

import pytest

from scrapers.engine import RunContext
from scrapers.proxies import Rotation
from scrapers.reactor import run_in_reactor
from scrapers.scrapy_engine import ScrapyEngine
from shared.jobspec import JobSpec, resolve_config
from shared.proxies import ProxyRepository
from testing.proxy_server import ForwardProxy
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class RecordingPool(ProxyRepository):
    """The real pool, noting the thread of every call."""

    threads: list[int]

    def pick(self, exclude=()):
        self.threads.append(threading.get_ident())
        return super().pick(exclude)

    def record_success(self, proxy_id, latency_ms):
        self.threads.append(threading.get_ident())
        super().record_success(proxy_id, latency_ms)

    def record_failure(self, proxy_id, reason, ban):
        self.threads.append(threading.get_ident())
        return super().record_failure(proxy_id, reason, ban)


class Sink:
    should_stop = False

    def __init__(self) -> None:
        self.found: list[dict] = []

    def page(self, url, status):
        pass

    def items(self, url, found):
        self.found.extend(found)

    def log(self, level, message):
        pass


def test_pool_calls_run_off_the_reactor_thread_and_bans_are_retried(db):
    pool = RecordingPool(db, cooldown_seconds=600)
    pool.threads = []
    with (
        SiteServer(pages=3, items_per_page=2) as site,
        ForwardProxy() as good,
        ForwardProxy("forbid") as forbidding,
    ):
        banning = pool.add(forbidding.url)["_id"]
        healthy = pool.add(good.url)["_id"]
        pool.proxies.update_one({"_id": healthy}, {"$set": {"use_seq": 10**9}})  # second
        config = resolve_config(
            {
                "item_selector": "div.product",
                "follow_links": True,
                "link_selector": "li.next a",
                "proxy": "pool",
                "concurrency": 1,
            }
        )
        spec = JobSpec("p", [site.url_for("/catalog/")], {"title": "h2::text"}, config)
        sink = Sink()
        result = ScrapyEngine().run(
            spec, sink, RunContext(rotation=Rotation("pool", pool, max_attempts=3))
        )
    assert result.error is None and len(sink.found) == 6
    assert pool.threads and reactor_thread() not in pool.threads
    assert pool.get(banning)["status"] == "cooldown" and forbidding.hits
    assert pool.get(healthy)["success_count"] >= 4  # robots.txt and the three pages


def reactor_thread() -> int:
    """The ident of the thread the process's reactor runs on."""
    return run_in_reactor(threading.get_ident).result(timeout=5)
