"""Quick checks of the local demo website in testing/sites/server.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.sites.server import SiteServer

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site() -> Iterator[SiteServer]:
    with SiteServer(pages=3, items_per_page=4, disallow=["/private", "/catalog/item/"]) as server:
        yield server


def fetch(url: str, timeout: float = 5.0) -> tuple[int, str, str]:
    """Return (status, content type, body) for a GET, also for error statuses."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read().decode("utf-8")
            return response.status, response.headers.get("Content-Type", ""), body
    except urllib.error.HTTPError as error:
        body = error.read().decode("utf-8")
        return error.code, error.headers.get("Content-Type", ""), body


def test_first_page_has_products_and_next_link(site: SiteServer) -> None:
    status, content_type, body = fetch(site.url + "/catalog/")
    assert status == 200
    assert content_type == "text/html; charset=utf-8"
    assert '<h1 class="page-title">Catalog page 1</h1>' in body
    assert body.count('<div class="product"') == 4
    assert (
        '<div class="product" data-sku="SKU-00001"><h2 class="product-title">Product 1</h2>'
        '<span class="price">$1.50</span><a class="detail" href="/catalog/item/1">details</a>'
        '<ul class="tags"><li>tag-a</li><li>tag-b</li></ul></div>'
    ) in body
    assert '<span class="price">$3.00</span><p class="stock">in stock</p>' in body
    assert body.count('<p class="stock">') == 2
    assert '<li class="next"><a href="/catalog/page/2">next</a></li>' in body
    assert 'class="previous"' not in body
    assert 'href="/about"' in body
    assert 'href="http://example.invalid/x"' in body


def test_last_page_has_no_next_link(site: SiteServer) -> None:
    status, _, body = fetch(site.url + "/catalog/page/3")
    assert status == 200
    assert 'data-sku="SKU-00009"' in body and 'data-sku="SKU-00012"' in body
    assert 'class="next"' not in body
    assert '<li class="previous"><a href="/catalog/page/2">prev</a></li>' in body


def test_robots_txt_lists_disallowed_prefixes(site: SiteServer) -> None:
    status, content_type, body = fetch(site.url + "/robots.txt")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert body.splitlines() == ["User-agent: *", "Disallow: /private", "Disallow: /catalog/item/"]


@pytest.mark.parametrize("path", ["/catalog/page/4", "/catalog/page/0", "/nowhere", "/"])
def test_unknown_pages_are_404(site: SiteServer, path: str) -> None:
    assert fetch(site.url + path)[0] == 404


def test_status_route_answers_the_code(site: SiteServer) -> None:
    status, _, body = fetch(site.url + "/status/503")
    assert status == 503
    assert "Status 503" in body


def test_requests_are_recorded_in_order(site: SiteServer) -> None:
    site.reset_requests()
    fetch(site.url + "/robots.txt")
    fetch(site.url + "/catalog/page/2")
    fetch(site.url + "/about")
    assert site.requests == ["/robots.txt", "/catalog/page/2", "/about"]
    site.reset_requests()
    assert site.requests == []


def test_api_catalog_returns_the_page_items(site: SiteServer) -> None:
    status, content_type, body = fetch(site.url + "/api/catalog?page=2")
    assert status == 200
    assert content_type.startswith("application/json")
    data = json.loads(body)
    assert data["page"] == 2 and data["pages"] == 3
    assert [item["sku"] for item in data["items"]] == [
        "SKU-00005",
        "SKU-00006",
        "SKU-00007",
        "SKU-00008",
    ]
    assert data["items"][0] == {
        "sku": "SKU-00005",
        "title": "Product 5",
        "price": "$7.50",
        "stock": None,
    }
    assert data["items"][1]["stock"] == "in stock"
    assert fetch(site.url + "/api/catalog?page=9")[0] == 404


def test_js_catalog_has_no_static_products(site: SiteServer) -> None:
    status, _, body = fetch(site.url + "/js/catalog/page/2")
    assert status == 200
    assert '<div id="app"></div>' in body
    assert "You need to enable JavaScript to run this app." in body
    assert '<div class="product"' not in body
    assert "/api/catalog?page=" in body


def test_item_feed_and_slow_routes() -> None:
    with SiteServer(pages=1, items_per_page=2, slow_seconds=0.2) as small:
        status, _, body = fetch(small.url + "/catalog/item/2")
        assert status == 200 and '<h1 class="product-title">Product 2</h1>' in body
        assert fetch(small.url + "/catalog/item/3")[0] == 404
        status, _, body = fetch(small.url + "/js/feed")
        assert body.count('<article class="post"') == 10
        feed = json.loads(fetch(small.url + "/api/feed?offset=40")[2])
        assert [p["title"] for p in feed["posts"]][-1] == "Post 50" and not feed["has_more"]
        started = time.monotonic()
        assert fetch(small.url + "/slow")[0] == 200
        assert time.monotonic() - started >= 0.2


def test_stop_does_not_wait_for_slow_requests() -> None:
    small = SiteServer(slow_seconds=30).start()
    thread = threading.Thread(target=fetch, args=(small.url + "/slow", 10.0), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while "/slow" not in small.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    small.stop()
    assert time.monotonic() - started < 3
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_command_line_prints_ready_and_exits_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "testing.sites.server", "--pages", "1000", "--items-per-page", "10"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"READY (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        status, _, body = fetch(match.group(1) + "/catalog/page/1000")
        assert status == 200 and 'data-sku="SKU-10000"' in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
