"""Real Celery worker processes running Scrapy jobs: delivery, caps, errors, crashes."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from shared import items, tasks
from shared.jobs import JobDoc, JobError
from shared.users import UserDoc
from testing.helpers import wait_for
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CATALOG = {
    "selectors": {"sku": "./@data-sku", "title": "h2.product-title::text"},
    "config": {
        "item_selector": "div.product",
        "follow_links": True,
        "link_selector": "li.next a::attr(href)",
    },
}


def catalog_job(site, **config):
    return {
        "url": f"{site.url}/catalog/",
        "engine": "scrapy",
        **CATALOG,
        "config": {**CATALOG["config"], **config},
    }


def started_lines(stack, job_id):
    return stack.database().logs.count_documents(
        {"job_id": job_id, "message": {"$regex": "^started on"}}
    )


def test_duplicate_deliveries_run_the_job_once(stack):
    headers = stack.register()
    with SiteServer(pages=3, delay=0.2) as site:
        job = stack.submit(headers, **catalog_job(site))
        client = stack.celery()
        for _ in range(2):
            client.send_task(tasks.SCRAPE, args=[job["id"]], queue="scrapy")
        done = stack.wait_job(job["id"], headers)
        # the duplicates are consumed (and dropped) once the first run is over
        wait_for(
            lambda: (
                stack.database().logs.count_documents(
                    {"job_id": job["id"], "message": {"$regex": "^completed"}}
                )
                == 1
            ),
            10,
        )
        catalog_requests = [p for p in site.requests if p.startswith("/catalog")]
    assert done["status"] == "completed" and done["items_scraped"] == 30
    assert started_lines(stack, job["id"]) == 1
    assert len(catalog_requests) == 3
    assert items.count(stack.database(), job["id"]) == 30


def test_a_rerun_after_a_crash_adds_no_duplicate_items(stack):
    headers = stack.register()
    with SiteServer(pages=2) as site:
        job = stack.submit(headers, **catalog_job(site))
        stack.wait_job(job["id"], headers)
        # as if the worker died after storing items: the job is pending again, items remain
        stack.database().jobs.update_one({"_id": job["id"]}, {"$set": {"status": "pending"}})
        stack.celery().send_task(tasks.SCRAPE, args=[job["id"]], queue="scrapy")
        wait_for(lambda: started_lines(stack, job["id"]) == 2, 20)
        done = stack.wait_job(job["id"], headers)
    assert done["status"] == "completed" and done["items_scraped"] == 20
    assert items.count(stack.database(), job["id"]) == 20


def test_one_worker_runs_many_jobs_without_state_leaking_between_them(stack):
    headers = stack.register()
    with SiteServer(pages=2) as site:
        ids = [stack.submit(headers, **catalog_job(site))["id"] for _ in range(12)]
        finished = [stack.wait_job(job_id, headers, timeout=90) for job_id in ids]
    # the same URLs in every job: a dupe filter or counter carried over would starve later jobs
    assert [(j["status"], j["pages_crawled"], j["items_scraped"]) for j in finished] == [
        ("completed", 2, 20)
    ] * 12


def test_max_pages_is_a_hard_cap(stack):
    headers = stack.register()
    with SiteServer(pages=5) as site:
        job = stack.submit(
            headers,
            url=f"{site.url}/catalog/",
            engine="scrapy",
            selectors={"h": "h1::text"},
            config={"follow_links": True, "max_pages": 3, "concurrency": 8},
        )
        done = stack.wait_job(job["id"], headers)
        fetched = [p for p in site.requests if p != "/robots.txt"]
    assert done["status"] == "completed"
    assert done["pages_crawled"] == 3 and len(fetched) == 3


def test_max_depth_limits_how_far_links_are_followed(stack):
    headers = stack.register()
    with SiteServer(pages=5) as site:
        job = stack.submit(headers, **catalog_job(site, max_depth=1))
        done = stack.wait_job(job["id"], headers)
    assert (done["status"], done["pages_crawled"], done["items_scraped"]) == ("completed", 2, 20)


def test_robots_txt_is_obeyed_by_default_and_can_be_ignored(stack):
    headers = stack.register()
    with SiteServer(pages=5, disallow=["/catalog/page/3"]) as site:
        polite = stack.wait_job(stack.submit(headers, **catalog_job(site))["id"], headers)
        assert "/catalog/page/3" not in site.requests
        rude = stack.wait_job(
            stack.submit(headers, **catalog_job(site, obey_robots=False))["id"], headers
        )
    assert (polite["status"], polite["pages_crawled"]) == ("completed", 2)
    assert (rude["status"], rude["pages_crawled"]) == ("completed", 5)


def test_a_worker_keeps_a_sites_robots_txt_for_its_next_jobs(stack):
    headers = stack.register()
    with SiteServer(pages=4, disallow=["/catalog/page/3"]) as site:
        for _ in range(3):
            done = stack.wait_job(stack.submit(headers, **catalog_job(site))["id"], headers)
            assert (done["status"], done["pages_crawled"]) == ("completed", 2)  # still obeyed
        fetched = site.requests.count("/robots.txt")
    assert fetched == 1 and "/catalog/page/3" not in site.requests


def test_a_start_url_forbidden_by_robots_fails_saying_so(stack):
    headers = stack.register()
    with SiteServer(pages=2, disallow=["/catalog"]) as site:
        done = stack.wait_job(stack.submit(headers, **catalog_job(site))["id"], headers)
    assert done["status"] == "failed" and done["error"]["type"] == "robots_forbidden"


def test_a_slow_site_fails_with_a_timeout_error(stack):
    headers = stack.register()
    with SiteServer(pages=1, slow_seconds=30) as site:
        job = stack.submit(
            headers, url=f"{site.url}/slow", engine="scrapy", config={"timeout_seconds": 2}
        )
        done = stack.wait_job(job["id"], headers, timeout=40)
    assert done["status"] == "failed" and done["error"]["type"] == "timeout"


def test_download_delay_spaces_requests(stack):
    headers = stack.register()
    with SiteServer(pages=3) as site:
        job = stack.submit(headers, **catalog_job(site, download_delay=0.6))
        done = stack.wait_job(job["id"], headers)
    assert done["status"] == "completed" and done["duration_seconds"] >= 1.2


def test_a_job_survives_its_worker_process_being_killed(stack):
    headers = stack.register()
    with SiteServer(pages=8, delay=0.5) as site:
        job = stack.submit(headers, **catalog_job(site))
        wait_for(lambda: stack.job(job["id"], headers)["pages_crawled"] >= 2, 30)
        for pid in stack.children("worker-scrapy"):
            os.kill(pid, signal.SIGKILL)
        done = stack.wait_job(job["id"], headers, timeout=60)
    assert done["status"] == "completed"
    assert done["items_scraped"] == 80 and done["pages_crawled"] == 8
    assert done["attempts"] == 2  # the take-over is a second attempt
    assert items.count(stack.database(), job["id"]) == 80
    assert started_lines(stack, job["id"]) == 2  # the killed run, then the take-over
    assert (
        stack.database().logs.count_documents(
            {"job_id": job["id"], "message": {"$regex": "taken over"}}
        )
        == 1
    )


def test_the_reconciler_notices_a_restarted_broker(tmp_path):
    import redis as redis_lib

    from deploy import embedded
    from workers import reconcile

    port = embedded.free_port()
    service = embedded.start_redis(tmp_path / "r", port)
    try:
        client = redis_lib.Redis.from_url(service.url)
        reconcile._broker.clear()
        assert reconcile._broker_restarted(client) is False  # first look
        assert reconcile._broker_restarted(client) is False  # same server
        service.stop()
        service = embedded.start_redis(tmp_path / "r", port)
        # a new Redis lost every waiting message: pending jobs are re-sent at once
        assert reconcile._broker_restarted(client) is True
    finally:
        service.stop()


def test_stored_jobs_and_users_hold_only_the_fields_their_types_declare(stack):
    # shared/jobs.py JobDoc and shared/users.py UserDoc are what the code reads these
    # documents as: a field written without being declared there is typed nowhere
    headers = stack.register()
    with SiteServer(pages=2) as site, SiteServer(pages=1, disallow=["/catalog"]) as closed:
        done = stack.submit(headers, **catalog_job(site))
        refused = stack.submit(headers, **catalog_job(closed))  # fails: robots_forbidden
        for job in (done, refused):
            stack.wait_job(job["id"], headers)
    database = stack.database()
    stored = {
        doc["_id"]: doc for doc in database.jobs.find({"_id": {"$in": [done["id"], refused["id"]]}})
    }
    assert stored[done["id"]]["status"] == "completed"
    assert stored[refused["id"]]["status"] == "failed"
    for doc in stored.values():
        assert set(doc) <= _declared(JobDoc), doc["_id"]
    assert set(stored[refused["id"]]["error"]) <= _declared(JobError)
    user = database.users.find_one({"_id": stored[done["id"]]["owner_id"]})
    assert user is not None and set(user) <= _declared(UserDoc)


def _declared(typed: Any) -> set[str]:
    return set(typed.__required_keys__ | typed.__optional_keys__)
