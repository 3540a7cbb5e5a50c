"""The Playwright engine against the local demo site in a real Chromium."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from scrapers import browser_pool
from scrapers.playwright_engine import PlaywrightEngine
from shared.jobspec import JobSpec, resolve_config
from shared.settings import Settings
from testing.sites.server import (
    DELAYED_QUOTES,
    FEED_TOTAL,
    SiteServer,
    price_for,
    sku_for,
    stock_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SETTINGS = Settings()
ROOT = Path(__file__).resolve().parents[2]
PRODUCT = {
    "sku": "div.product::attr(data-sku)",
    "title": "h2.product-title::text",
    "price": "span.price::text",
    "stock": "p.stock::text",
}

if not os.access(SETTINGS.chromium_path, os.X_OK):
    pytest.skip(f"no Chromium at {SETTINGS.chromium_path}", allow_module_level=True)


class FakeSink:
    """Records what the engine reports; `stop_after` pages makes `should_stop` true."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.pages: list[tuple[str, int]] = []
        self.found: list[dict[str, Any]] = []
        self.logs: list[tuple[str, str]] = []
        self.stop_after = stop_after
        self.full = threading.Event()

    def page(self, url: str, status: int) -> None:
        self.pages.append((url, status))

    def items(self, page_url: str, found: list[dict[str, Any]]) -> None:
        self.found.extend(found)

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    @property
    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.pages) >= self.stop_after


def make_spec(urls: list[str], selectors: dict[str, str] | None = None, **config: Any) -> JobSpec:
    return JobSpec(
        job_id="test",
        urls=urls,
        selectors=selectors or {},
        config=resolve_config(config),
        user_agent="ScrapeMasterTest",
    )


def live(pids: list[int]) -> list[int]:
    """The pids that still run (zombies only wait for their parent to reap them)."""
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2] != "Z":
            alive.append(pid)
    return alive


def chromium_descendants(root: int) -> list[int]:
    """Live Chromium processes whose ancestry includes `root`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found = []
    for pid in parents:
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        ancestor = pid
        while "chrom" in exe and ancestor > 1:
            ancestor = parents.get(ancestor, 0)
            if ancestor == root:
                found.append(pid)
                break
    return found


def wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while live(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return live(pids)


@pytest.fixture(scope="module")
def site():
    with SiteServer(pages=3, items_per_page=10, slow_seconds=20) as server:
        yield server


@pytest.fixture(scope="module")
def engine():
    engine = PlaywrightEngine(SETTINGS)
    yield engine
    engine.close()


def test_renders_js_catalog_across_pages(engine, site):
    spec = make_spec(
        [site.url_for("/js/catalog/")],
        PRODUCT,
        item_selector="div.product",
        follow_links=True,
        link_selector="li.next a",
    )
    sink = FakeSink()
    result = engine.run(spec, sink)
    assert result.error is None
    assert [status for _, status in sink.pages] == [200, 200, 200]
    assert sink.found == [
        {"sku": sku_for(i), "title": f"Product {i}", "price": price_for(i), "stock": stock_for(i)}
        for i in range(1, 31)
    ]
    assert sink.found[0]["stock"] is None  # odd products have no stock line


def test_wait_for_waits_for_delayed_content(engine, site):
    spec = make_spec(
        [site.url_for("/js/delayed")],
        {"text": "span.text::text"},
        item_selector="div.quote",
        wait_for="div.quote",
    )
    sink = FakeSink()
    result = engine.run(spec, sink)
    assert result.error is None
    assert sink.found == [{"text": f"Quote {k}"} for k in range(1, DELAYED_QUOTES + 1)]


def test_missing_wait_for_is_a_warning_and_the_page_is_still_extracted(engine, site):
    spec = make_spec(
        # wait_for waits half the job's time (3 s): room for a loaded machine's page load
        [site.url_for("/about")],
        {"h": "h1::text"},
        wait_for="div.never",
        timeout_seconds=6,
    )
    sink = FakeSink()
    result = engine.run(spec, sink)
    assert result.error is None
    assert sink.found == [{"h": "About"}]
    assert any(level == "WARNING" and "div.never" in text for level, text in sink.logs)


def test_scroll_loads_the_whole_feed(engine, site):
    spec = make_spec([site.url_for("/js/feed")], {"post": "article.post h3::text"}, scroll=8)
    sink = FakeSink()
    engine.run(spec, sink)
    assert sink.found[0]["post"] == [f"Post {k}" for k in range(1, FEED_TOTAL + 1)]


def test_cookies_do_not_pass_between_jobs(engine, site):
    states = []
    for _ in range(2):
        sink = FakeSink()
        engine.run(make_spec([site.url_for("/js/cookie")], {"state": "p#state::text"}), sink)
        states.append(sink.found[0]["state"])
    assert states == ["new", "new"]


def test_cancel_stops_after_the_first_page(engine, site):
    # Following every same-site link would visit dozens of pages.
    spec = make_spec([site.url_for("/js/catalog/")], follow_links=True, max_pages=50)
    sink = FakeSink(stop_after=1)
    result = engine.run(spec, sink)
    assert result.finish_reason == "cancelled"
    assert result.error is None
    assert len(sink.pages) == 1


def test_404_start_url_is_an_http_error(engine, site):
    sink = FakeSink()
    result = engine.run(make_spec([site.url_for("/status/404")]), sink)
    assert result.error is not None
    assert result.error["type"] == "http_error"
    assert "HTTP 404" in result.error["message"]
    assert sink.pages == [(site.url_for("/status/404"), 404)]


def test_connection_refused_is_reported(engine):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = engine.run(make_spec([f"http://127.0.0.1:{port}/"]), FakeSink())
    assert result.error is not None
    assert result.error["type"] == "connection_refused"


def test_robots_txt_is_obeyed(engine):
    with SiteServer(disallow=["/js/"]) as strict:
        result = engine.run(make_spec([strict.url_for("/js/cookie")]), FakeSink())
        assert result.error is not None
        assert result.error["type"] == "robots_forbidden"
        assert "/js/cookie" not in strict.requests


def test_robots_txt_is_kept_for_the_next_job_and_still_obeyed(engine):
    with SiteServer(disallow=["/js/"]) as strict:
        allowed = engine.run(make_spec([strict.url_for("/catalog/")]), FakeSink())
        refused = engine.run(make_spec([strict.url_for("/js/cookie")]), FakeSink())
        fetched = strict.requests.count("/robots.txt")
    assert allowed.error is None
    assert refused.error is not None and refused.error["type"] == "robots_forbidden"
    assert fetched == 1  # the second job read the rules the first one fetched


def test_job_timeout_keeps_the_pages_so_far(engine):
    # a page a second for 20 pages: the 4 s timeout ends the crawl after a few pages, and
    # leaves the first page time enough to arrive on a loaded machine
    with SiteServer(pages=20, delay=1.0) as slow_site:
        spec = make_spec(
            [slow_site.url_for("/catalog/")],
            PRODUCT,
            item_selector="div.product",
            follow_links=True,
            link_selector="li.next a",
            timeout_seconds=4,
        )
        sink = FakeSink()
        started = time.monotonic()
        result = engine.run(spec, sink)
    assert time.monotonic() - started < 4 + 8  # stopped at its timeout, not after 20 pages
    assert result.error is not None
    assert result.error["type"] == "timeout"
    assert 1 <= len(sink.pages) < 20
    assert len(sink.found) == 10 * len(sink.pages)


def test_browser_crash_fails_the_job_and_the_next_job_relaunches(engine, site):
    pool = browser_pool.get_pool(SETTINGS)

    def crash() -> None:
        for pid in pool.pids():
            os.kill(pid, signal.SIGKILL)

    timer = threading.Timer(1.0, crash)
    timer.start()
    started = time.monotonic()
    result = engine.run(make_spec([site.url_for("/slow")]), FakeSink())
    timer.join()
    assert time.monotonic() - started < 10
    assert result.error is not None
    assert result.error["type"] == "browser_crashed"

    sink = FakeSink()
    result = engine.run(make_spec([site.url_for("/js/cookie")], {"state": "p#state::text"}), sink)
    assert result.error is None
    assert sink.found == [{"state": "new"}]


def test_browser_is_recycled_after_the_configured_pages():
    pool = browser_pool.BrowserPool(SETTINGS.with_(browser_recycle_pages=1))
    try:

        async def job() -> None:
            async with pool.lease() as lease:
                lease.pages = 1

        for _ in range(2):
            pool.submit(job()).result(60)
        assert pool.launches == 2
    finally:
        pool.close()
    assert live(pool.pids()) == []


def test_sigkilled_worker_leaves_no_chromium(tmp_path):
    # A hung browser (SIGSTOP) ignores its pipe closing; only the watchdog can end it.
    script = tmp_path / "worker.py"
    script.write_text(
        "import json, time\n"
        "from scrapers.browser_pool import get_pool\n"
        "from shared.settings import Settings\n"
        "pool = get_pool(Settings())\n"
        "async def warm():\n"
        "    async with pool.lease() as lease:\n"
        "        await (await lease.browser.new_page()).set_content('<p>x</p>')\n"
        "pool.submit(warm()).result(60)\n"
        "print(json.dumps(pool.pids()), flush=True)\n"
        "time.sleep(120)\n"
    )
    worker = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,  # its own group: killing it spares pytest
    )
    try:
        pids = json.loads(worker.stdout.readline())
        assert len(pids) >= 3
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its Playwright driver at once
        worker.wait(10)
        assert wait_gone(pids, 5) == []
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.stdout.close()


def test_close_leaves_no_chromium(engine, site):
    engine.run(make_spec([site.url_for("/about")]), FakeSink())
    pids = browser_pool.get_pool(SETTINGS).pids()
    assert pids and set(pids) >= set(chromium_descendants(os.getpid()))
    engine.close()
    assert live(pids) == []
    assert chromium_descendants(os.getpid()) == []


def test_a_page_over_max_page_bytes_is_skipped_with_a_clear_error(engine, site):
    spec = make_spec([site.url_for("/js/catalog/")], PRODUCT, item_selector="div.product")
    spec = dataclasses.replace(spec, max_page_bytes=2_000)  # the rendered page is larger
    sink = FakeSink()
    result = engine.run(spec, sink)
    assert result.error is not None and result.error["type"] == "page_too_large", result
    assert "larger than MAX_PAGE_BYTES" in result.error["message"]
    assert sink.found == []


def test_extraction_limits_apply_in_the_browser_too(engine, site):
    spec = make_spec(
        [site.url_for("/js/catalog/")],
        {"all": "//body", "sku": "./@data-sku"},
        item_selector="div.product",
    )
    spec = dataclasses.replace(spec, max_items_per_page=3, max_field_bytes=100)
    sink = FakeSink()
    result = engine.run(spec, sink)
    assert result.error is None
    assert len(sink.found) == 3 and all(len(i["all"]) <= 100 for i in sink.found)
    assert any("MAX_ITEMS_PER_PAGE" in message for _, message in sink.logs)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a platform where the sandbox is refused")
def test_a_sandbox_the_platform_refuses_falls_back_and_still_renders(site):
    engine = PlaywrightEngine(Settings(chromium_sandbox="on"))
    try:
        spec = make_spec([site.url_for("/catalog/")], {"t": "h1::text"})
        result = engine.run(spec, FakeSink())
        assert result.error is None, result
        assert browser_pool.get_pool(engine.settings).sandbox is False  # root: no sandbox
    finally:
        engine.close()


def test_sandbox_setting():
    assert browser_pool.sandbox_wanted("auto", uid=1000) is True
    assert browser_pool.sandbox_wanted("auto", uid=0) is False
    assert browser_pool.sandbox_wanted("on", uid=0) is True
    assert browser_pool.sandbox_wanted("off", uid=1000) is False
