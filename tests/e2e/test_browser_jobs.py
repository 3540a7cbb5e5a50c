"""JavaScript pages through the service: playwright jobs, `auto` choosing and saying why."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import requests

from testing.helpers import Stack, wait_for
from testing.sites.server import SiteServer, price_for, sku_for, stock_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser]

SELECTORS = {
    "sku": "./@data-sku",
    "title": "h2.product-title::text",
    "price": "span.price::text",
    "stock": "p.stock::text",
}
CATALOG = {"item_selector": "div.product", "follow_links": True, "link_selector": "li.next a"}


def chromium_pids() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"chromium" in cmd.split(b"\0")[0]:
                found.add(int(entry.name))
    return found


@pytest.fixture(scope="module")
def browser_stack(redis_url, mongo_url, tmp_path_factory):
    before = chromium_pids()
    stack = Stack(redis_url, mongo_url, f"br_{os.getpid()}", tmp_path_factory.mktemp("br"))
    try:
        stack.start(api=True, queues=("scrapy", "playwright"))
        stack.chromium_before = before
        yield stack
    finally:
        stack.stop()


def expected(count: int) -> list[dict]:
    return [
        {"sku": sku_for(i), "title": f"Product {i}", "price": price_for(i), "stock": stock_for(i)}
        for i in range(1, count + 1)
    ]


def items_of(stack, job_id, headers) -> list[dict]:
    page = requests.get(
        stack.url(f"/results/{job_id}"), headers=headers, params={"limit": 1000}, timeout=10
    ).json()
    return sorted((r["data"] for r in page["results"]), key=lambda d: d["sku"])


def test_auto_moves_a_javascript_catalog_to_playwright_and_says_why(browser_stack):
    headers = browser_stack.register()
    with SiteServer(pages=3) as site:
        job = browser_stack.submit(
            headers,
            url=f"{site.url}/js/catalog/",
            engine="auto",
            selectors=SELECTORS,
            config=CATALOG,
        )
        done = browser_stack.wait_job(job["id"], headers, timeout=90)
    assert done["status"] == "completed", done
    assert done["engine_used"] == "playwright"
    assert (done["pages_crawled"], done["items_scraped"]) == (3, 30)
    assert items_of(browser_stack, job["id"], headers) == expected(30)
    logs = requests.get(
        browser_stack.url(f"/jobs/{job['id']}/logs"), headers=headers, timeout=10
    ).json()["logs"]
    reasons = [line["message"] for line in logs if line["message"].startswith("auto:")]
    assert reasons[-1] == "auto: static: 0 items; rendered: 10 → playwright", reasons
    assert done["auto_decision"]["engine"] == "playwright"


def test_auto_keeps_a_static_catalog_on_scrapy(browser_stack):
    headers = browser_stack.register()
    with SiteServer(pages=2) as site:
        job = browser_stack.submit(
            headers,
            url=f"{site.url}/catalog/",
            engine="auto",
            selectors=SELECTORS,
            config={**CATALOG, "link_selector": "li.next a"},
        )
        done = browser_stack.wait_job(job["id"], headers, timeout=60)
    assert (done["status"], done["engine_used"], done["items_scraped"]) == (
        "completed",
        "scrapy",
        20,
    )
    logs = requests.get(
        browser_stack.url(f"/jobs/{job['id']}/logs"), headers=headers, timeout=10
    ).json()["logs"]
    assert "auto: static: 10 items on the first page → scrapy" in [m["message"] for m in logs]


def test_playwright_job_waits_for_delayed_content(browser_stack):
    headers = browser_stack.register()
    with SiteServer(pages=1) as site:
        job = browser_stack.submit(
            headers,
            url=f"{site.url}/js/delayed",
            engine="playwright",
            selectors={"text": "span.text::text", "author": "small.author::text"},
            config={"item_selector": "div.quote", "wait_for": "div.quote"},
        )
        done = browser_stack.wait_job(job["id"], headers, timeout=60)
    assert (done["status"], done["engine_used"], done["items_scraped"]) == (
        "completed",
        "playwright",
        5,
    )


def test_cancel_stops_a_running_playwright_crawl(browser_stack):
    headers = browser_stack.register()
    with SiteServer(pages=40) as site:
        job = browser_stack.submit(
            headers,
            url=f"{site.url}/js/catalog/",
            engine="playwright",
            selectors=SELECTORS,
            config={**CATALOG, "concurrency": 1},
        )
        wait_for(lambda: browser_stack.job(job["id"], headers)["pages_crawled"] >= 2, 60)
        answer = requests.post(
            browser_stack.url(f"/jobs/{job['id']}/cancel"), headers=headers, timeout=10
        )
        assert answer.status_code == 200
        at_cancel = len([p for p in site.requests if p.startswith("/js/catalog")])
        wait_for(
            lambda: browser_stack.database().logs.find_one(
                {"job_id": job["id"], "message": "stopped: cancelled while running"}
            ),
            20,
            message="the worker to stop the browser crawl",
        )
        after = len([p for p in site.requests if p.startswith("/js/catalog")])
    assert after - at_cancel <= 2 and after < 40
    assert browser_stack.job(job["id"], headers)["status"] == "cancelled"


def test_auto_with_next_click_and_actions_runs_in_the_browser(browser_stack):
    headers = browser_stack.register()
    item = {"id": "./@data-id", "title": "./text()"}
    with SiteServer(pages=1) as site:
        paged = browser_stack.submit(
            headers,
            url=f"{site.url}/act/list?delay=200",
            engine="auto",
            selectors=item,
            config={"item_selector": "li.item", "next_click": "button#next", "wait_for": "li.item"},
        )
        failing = browser_stack.submit(
            headers,
            url=f"{site.url}/act/search",
            engine="auto",
            selectors={"text": "./text()"},
            config={
                "item_selector": "div.result",
                "actions": [
                    {"type": "fill", "selector": "input[name=q]", "value": "x"},
                    {"type": "click", "selector": "button.accept", "timeout_seconds": 1},
                ],
            },
        )
        done = browser_stack.wait_job(paged["id"], headers, timeout=90)
        failed = browser_stack.wait_job(failing["id"], headers, timeout=90)
    assert done["status"] == "completed", done
    assert done["engine_used"] == "playwright"
    assert "need a browser" in done["auto_decision"]["reason"]
    assert (done["pages_crawled"], done["items_scraped"]) == (5, 50)
    page = requests.get(
        browser_stack.url(f"/results/{paged['id']}"), headers=headers, params={"limit": 100}
    ).json()
    assert sorted(int(r["data"]["id"]) for r in page["results"]) == list(range(1, 51))
    assert failed["status"] == "failed", failed
    assert failed["error"]["type"] == "action_failed"
    assert failed["error"]["message"].startswith(
        "step 2 (click button.accept): no element after 1 s"
    )


def test_preview_runs_the_actions_and_shows_the_page_after_them(browser_stack):
    headers = browser_stack.register()
    with SiteServer(pages=1) as site:
        answer = requests.post(
            browser_stack.url("/jobs/preview"),
            headers=headers,
            timeout=90,
            json={
                "url": f"{site.url}/act/search?delay=200",
                "selectors": {"text": "./text()"},
                "config": {
                    "item_selector": "div.result",
                    "actions": [
                        {"type": "fill", "selector": "input[name=q]", "value": "lamp"},
                        {"type": "press", "key": "Enter"},
                        {"type": "wait", "selector": "div.result"},
                        {"type": "screenshot"},  # a preview stores no file: no failure either
                    ],
                },
            },
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["engine"] == "playwright" and "actions" in body["auto_reason"]
    assert body["count"] == 7 and body["items"][0] == {"text": "lamp result 1"}


def test_no_chromium_outlives_the_playwright_worker(browser_stack):
    # last in this file: it stops the module's playwright worker
    headers = browser_stack.register()
    with SiteServer(pages=1) as site:
        job = browser_stack.submit(
            headers,
            url=f"{site.url}/js/catalog/",
            engine="playwright",
            selectors=SELECTORS,
            config={"item_selector": "div.product"},
        )
        browser_stack.wait_job(job["id"], headers, timeout=60)
    assert chromium_pids() - browser_stack.chromium_before, "the worker keeps a warm browser"
    browser_stack.stop_process("worker-playwright", signal.SIGTERM)
    wait_for(
        lambda: not (chromium_pids() - browser_stack.chromium_before),
        20,
        message="chromium gone after the worker stopped",
    )
