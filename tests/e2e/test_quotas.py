"""Usage metering and quotas end to end (issue 25): the API and a scrapy worker as real
processes, crawling a local site. Usage agrees with the stored jobs after runs and a retry;
quotas refuse at submit exactly at the limit, stop a running job exactly at it (items kept),
and hold a user's extra job pending while another user's job runs."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import UTC, datetime

import pytest
import requests

from shared import items
from testing.helpers import Stack, wait_for
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FOLLOW = {
    "item_selector": "div.product",
    "follow_links": True,
    "link_selector": "li.next a::attr(href)",
    "concurrency": 1,
}
SELECTORS = {"title": "h2.product-title::text"}


@pytest.fixture(scope="module")
def quota_stack(redis_url, mongo_url, tmp_path_factory):
    stack = Stack(redis_url, mongo_url, f"qu_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("qu"))
    try:
        stack.start(
            api=True,
            queues=(),
            ADMIN_USERNAME="root",
            ADMIN_PASSWORD="admin-pass-1",
            JOB_STALE_SECONDS="3",
            QUOTA_WAIT_SECONDS="1",
        )
        stack.start_worker("scrapy", concurrency=2)
        yield stack
    finally:
        stack.stop()


def set_quotas(stack: Stack, headers: dict, **quotas) -> dict:
    admin = stack.login("root", "admin-pass-1")
    answer = requests.patch(
        stack.url(f"/admin/users/{stack.user_id(headers)}"),
        json={"quotas": quotas},
        headers=admin,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def usage(stack: Stack, headers: dict) -> dict:
    answer = requests.get(stack.url("/usage"), headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def crawl(site: SiteServer, **config) -> dict:
    return {
        "url": f"{site.url}/catalog/",
        "engine": "scrapy",
        "selectors": SELECTORS,
        "config": {**FOLLOW, **config},
    }


def test_usage_equals_the_stored_jobs_after_runs_and_a_retry(quota_stack):
    stack = quota_stack
    headers = stack.register()
    with SiteServer(pages=6, items_per_page=10, delay=0.3) as site:
        plain = stack.submit(headers, **crawl(site, max_pages=3))
        stack.wait_job(plain["id"], headers)
        retried = stack.submit(headers, **crawl(site))
        wait_for(lambda: stack.job(retried["id"], headers)["pages_crawled"] >= 2, 30)
        cancel = requests.post(stack.url(f"/jobs/{retried['id']}/cancel"), headers=headers)
        assert cancel.status_code == 200
        wait_for(
            lambda: stack.database().logs.find_one(
                {"job_id": retried["id"], "message": "stopped: cancelled while running"}
            ),
            20,
        )
        first_run = stack.database().jobs.find_one({"_id": retried["id"]})["pages_crawled"]
        again = requests.post(stack.url(f"/jobs/{retried['id']}/retry"), headers=headers)
        assert again.status_code == 200, again.text
        done = stack.wait_job(retried["id"], headers)
        assert done["status"] == "completed" and done["pages_crawled"] == 6

    stored = list(stack.database().jobs.find({"owner_id": stack.user_id(headers)}))
    assert len(stored) == 2
    by_id = {job["_id"]: job for job in stored}
    # pages: once per fetch, per run (the retry fetched the first pages again)
    assert by_id[plain["id"]]["usage"]["pages"] == 3
    assert by_id[retried["id"]]["usage"]["pages"] == first_run + 6
    # items: once per stored item (the retry's items of the same pages are the same items)
    assert (
        by_id[retried["id"]]["usage"]["items"] == 60 == items.count(stack.database(), retried["id"])
    )
    mine = usage(stack, headers)
    assert mine["jobs"] == 2
    assert mine["pages"] == sum(job["usage"]["pages"] for job in stored) == 3 + first_run + 6
    assert mine["items"] == sum(job["items_scraped"] for job in stored) == 30 + 60
    assert mine["quotas"] == {
        "concurrent_jobs": None,
        "pages_per_month": None,
        "browser_minutes_per_month": None,
        "storage_bytes": None,
    }
    admin = stack.login("root", "admin-pass-1")
    table = requests.get(
        stack.url("/admin/usage"), params={"group_by": "user"}, headers=admin, timeout=10
    ).json()
    row = next(r for r in table["usage"] if r["user_id"] == stack.user_id(headers))
    assert row["pages"] == mine["pages"] and row["jobs"] == 2
    days = requests.get(
        stack.url("/admin/usage"), params={"group_by": "day"}, headers=admin, timeout=10
    ).json()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert [r["day"] for r in days["usage"]] == [today]
    assert days["usage"][0]["pages"] == table["total"]["pages"]
    # Prometheus: per user for the busiest (METRICS_TOP_USERS), the rest as "other"
    me = requests.get(stack.url("/auth/me"), headers=headers, timeout=10).json()
    metrics = requests.get(stack.url("/metrics"), headers=admin, timeout=10).text
    expected = f'scrapemaster_usage_pages{{user="{me["username"]}"}} {float(mine["pages"])}'
    assert expected in metrics
    users = requests.get(stack.url("/admin/users"), headers=admin, timeout=10).json()["users"]
    listed = next(u for u in users if u["id"] == me["id"])
    assert listed["usage"]["pages"] == mine["pages"] and listed["quotas"] == mine["quotas"]


def test_usage_stays_exact_when_a_worker_is_killed_mid_job(quota_stack):
    stack = quota_stack
    headers = stack.register()
    with SiteServer(pages=8, items_per_page=10, delay=0.4) as site:
        job = stack.submit(headers, **crawl(site))
        wait_for(lambda: stack.job(job["id"], headers)["pages_crawled"] >= 2, 30)
        for pid in stack.children("worker-scrapy"):
            os.kill(pid, signal.SIGKILL)
        done = stack.wait_job(job["id"], headers, timeout=90)
    assert done["status"] == "completed" and done["items_scraped"] == 80
    stored = stack.database().jobs.find_one({"_id": job["id"]})
    assert stored["takeovers"] == 1
    # the killed run's pages (as of its last progress write) and the take-over's 8 again
    assert stored["usage"]["pages"] >= 2 + 8
    assert stored["usage"]["items"] == 80  # each stored item once
    mine = usage(stack, headers)
    assert mine["pages"] == stored["usage"]["pages"] and mine["items"] == 80


def test_pages_quota_stops_a_running_job_at_the_limit_and_refuses_at_submit(quota_stack):
    stack = quota_stack
    headers = stack.register()
    shown = set_quotas(stack, headers, pages_per_month=7)
    assert shown["quotas"]["pages_per_month"] == 7
    with SiteServer(pages=30, items_per_page=10) as site:
        small = stack.submit(headers, **crawl(site, max_pages=3))
        assert stack.wait_job(small["id"], headers)["status"] == "completed"
        big = stack.submit(headers, **crawl(site, max_pages=30))  # 3 of 7 used: accepted
        done = stack.wait_job(big["id"], headers)
        assert done["status"] == "failed" and done["error"]["type"] == "quota_exceeded"
        assert done["pages_crawled"] == 4  # exactly the 4 pages left
        assert done["items_scraped"] == 40 == items.count(stack.database(), big["id"])  # kept
        assert usage(stack, headers)["pages"] == 7
        refused = requests.post(stack.url("/jobs"), json=crawl(site), headers=headers, timeout=10)
        assert refused.status_code == 429
        body = refused.json()
        now = datetime.now(UTC)
        next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
        assert body["type"] == "quota_exceeded" and body["quota"] == "pages_per_month"
        assert body["used"] == 7 and body["limit"] == 7
        assert body["resets_at"] == next_month.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert body["detail"] and body["request_id"]
        # raised by the admin: accepted again
        set_quotas(stack, headers, pages_per_month=8)
        accepted = requests.post(stack.url("/jobs"), json=crawl(site), headers=headers, timeout=10)
        assert accepted.status_code == 201
        requests.post(stack.url(f"/jobs/{accepted.json()['id']}/cancel"), headers=headers)


def test_concurrent_jobs_quota_keeps_the_extra_job_pending_while_others_run(quota_stack):
    stack = quota_stack
    a, b = stack.register(), stack.register()
    set_quotas(stack, a, concurrent_jobs=1)
    with SiteServer(pages=8, items_per_page=2, delay=0.25) as site:
        first = stack.submit(a, **crawl(site))
        wait_for(lambda: stack.job(first["id"], a)["status"] == "running", 30)
        second = stack.submit(a, **crawl(site, max_pages=2))
        other = stack.submit(b, **crawl(site, max_pages=2))
        # the worker has room for two: B's job runs and ends while A's second waits
        assert stack.wait_job(other["id"], b, timeout=60)["status"] == "completed"
        assert stack.job(second["id"], a)["status"] == "pending"
        assert stack.job(first["id"], a)["status"] == "running"
        done_first = stack.wait_job(first["id"], a, timeout=60)
        done_second = stack.wait_job(second["id"], a, timeout=60)
    assert done_first["status"] == done_second["status"] == "completed"
    assert done_second["started_at"] >= done_first["completed_at"]
    assert usage(stack, a)["quotas"]["concurrent_jobs"] == 1


@pytest.mark.browser
def test_dashboard_usage_page_shows_usage_against_quotas_and_everyone_to_an_admin(quota_stack):
    from playwright.sync_api import sync_playwright

    stack = quota_stack
    username = f"d{uuid.uuid4().hex[:8]}"
    headers = stack.register(username, "correct-horse")
    set_quotas(stack, headers, pages_per_month=50, concurrent_jobs=2)
    with SiteServer(pages=3, items_per_page=2) as site:
        stack.wait_job(stack.submit(headers, **crawl(site))["id"], headers)
    allowed = f"127.0.0.1:{stack.port}"

    def only_the_service(route) -> None:
        if allowed in route.request.url:
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            for who, password in ((username, "correct-horse"), ("root", "admin-pass-1")):
                context = chromium.new_context()
                context.route("**/*", only_the_service)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.goto(stack.base + "/usage")
                page.wait_for_url("**/login?next=%2Fusage")
                page.fill("#login-form input[name=username]", who)
                page.fill("#login-form input[name=password]", password)
                page.click("#login-form button[type=submit]")
                page.wait_for_url(stack.base + "/usage")
                pages = page.locator('#usage tr[data-quota="pages"]')
                pages.wait_for()
                if who == username:
                    assert pages.inner_text().split("\t")[1:] == ["3", "50", "6%"]
                    assert page.locator("#everyone-card").is_hidden()
                else:
                    row = page.locator("#everyone tbody tr", has_text=username)
                    row.wait_for()
                    cells = row.inner_text().split("\t")
                    assert cells[3] == "3" and cells[6].startswith("2 · 50 · unlimited")
                assert errors == []
                context.close()
        finally:
            chromium.close()


@pytest.mark.browser
def test_browser_seconds_are_metered_for_the_time_the_tabs_were_open(quota_stack):
    stack = quota_stack
    if "worker-playwright" not in stack.procs:
        stack.start_worker("playwright")
    headers = stack.register()
    with SiteServer(pages=3, items_per_page=2, delay=0.5) as site:
        job = stack.submit(headers, **{**crawl(site), "engine": "playwright"})
        done = stack.wait_job(job["id"], headers, timeout=90)
    assert done["status"] == "completed" and done["pages_crawled"] == 3
    stored = stack.database().jobs.find_one({"_id": job["id"]})
    # three pages each answered after 0.5 s, in one tab that stayed open between them
    assert 1.5 <= stored["usage"]["browser_seconds"] < 60
    assert stored["usage"]["browser_seconds"] == stored["browser_seconds"]
    mine = usage(stack, headers)
    assert mine["browser_seconds"] == pytest.approx(stored["usage"]["browser_seconds"])
    assert mine["pages"] == 3
