"""Controlling running work: cancel stops a crawl, priorities order waiting jobs."""

from __future__ import annotations

import pytest
import requests

from shared import items
from testing.helpers import wait_for
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FOLLOW = {
    "item_selector": "div.product",
    "follow_links": True,
    "link_selector": "li.next a::attr(href)",
    "concurrency": 1,
}
SELECTORS = {"title": "h2.product-title::text"}


def test_cancel_stops_a_running_scrapy_crawl_and_keeps_its_items(stack):
    headers = stack.register()
    with SiteServer(pages=30, delay=0.3) as site:
        job = stack.submit(
            headers, url=f"{site.url}/catalog/", engine="scrapy", selectors=SELECTORS, config=FOLLOW
        )
        wait_for(lambda: stack.job(job["id"], headers)["pages_crawled"] >= 2, 30)
        answer = requests.post(stack.url(f"/jobs/{job['id']}/cancel"), headers=headers, timeout=10)
        assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
        at_cancel = len(site.requests)
        wait_for(
            lambda: stack.database().logs.find_one(
                {"job_id": job["id"], "message": "stopped: cancelled while running"}
            ),
            15,
            message="the worker to stop the crawl",
        )
        after_stop = len(site.requests)
    done = stack.job(job["id"], headers)
    assert done["status"] == "cancelled"
    # at most the page in flight plus one scheduled before the stop was noticed
    assert after_stop - at_cancel <= 3 and after_stop < 30
    stored = items.count(stack.database(), job["id"])
    assert stored >= 20 and done["items_scraped"] == stored
    again = requests.post(stack.url(f"/jobs/{job['id']}/cancel"), headers=headers, timeout=10)
    assert again.status_code == 409


def test_higher_priority_waiting_jobs_start_first(stack):
    headers = stack.register()
    with SiteServer(pages=4, delay=0.4) as site:
        blocker = stack.submit(
            headers, url=f"{site.url}/catalog/", engine="scrapy", selectors=SELECTORS, config=FOLLOW
        )
        wait_for(lambda: stack.job(blocker["id"], headers)["status"] == "running", 30)
        one_page = {"url": f"{site.url}/catalog/page/2", "engine": "scrapy", "selectors": SELECTORS}
        order = ["low", 3, "normal", "high", 9, 0]
        ids = {str(p): stack.submit(headers, priority=p, **one_page)["id"] for p in order}
        cancelled = stack.submit(headers, priority="high", **one_page)
        requests.post(stack.url(f"/jobs/{cancelled['id']}/cancel"), headers=headers, timeout=10)
        finished = {p: stack.wait_job(i, headers, timeout=60) for p, i in ids.items()}
    started = sorted(finished, key=lambda p: finished[p]["started_at"])
    assert started == ["9", "high", "normal", "3", "low", "0"]
    assert stack.job(cancelled["id"], headers)["started_at"] is None


def test_deleting_a_running_job_stops_the_crawl_and_leaves_no_items(stack):
    headers = stack.register()
    with SiteServer(pages=30, delay=0.3) as site:
        job = stack.submit(
            headers, url=f"{site.url}/catalog/", engine="scrapy", selectors=SELECTORS, config=FOLLOW
        )
        wait_for(lambda: stack.job(job["id"], headers)["pages_crawled"] >= 2, 30)
        answer = requests.delete(stack.url(f"/jobs/{job['id']}"), headers=headers, timeout=10)
        assert answer.status_code == 204
        at_delete = len(site.requests)

        wait_for(
            lambda: f"job {job['id']}: run" in stack.logs["worker-scrapy"].read_text(),
            20,
            message="the crawl to stop",
        )
        after = len(site.requests)
    assert after - at_delete <= 3 and after < 30
    assert (
        requests.get(stack.url(f"/jobs/{job['id']}"), headers=headers, timeout=10).status_code
        == 404
    )
    wait_for(
        lambda: stack.database().results.count_documents({"job_id": job["id"]}) == 0,
        10,
        message="the stopped run's items purged",
    )
