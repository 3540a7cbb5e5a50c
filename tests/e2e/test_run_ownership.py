"""Run ownership: a run that lost its job (cancel→retry, reset) stops and leaves one run's
items and counters only."""

from __future__ import annotations

import uuid

import pytest
import requests

from shared import items
from testing.helpers import Stack, wait_for
from testing.helpers import catalog_crawl as crawl
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def own_stack(redis_url, mongo_url, tmp_path_factory):
    stack = Stack(
        redis_url, mongo_url, f"own_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("own")
    )
    try:
        # small batches: the old run flushes items often, so a late write is likely
        stack.start(api=True, queues=("scrapy",), ITEM_BATCH_SIZE="3", JOB_STALE_SECONDS="3")
        yield stack
    finally:
        stack.stop()


def post(stack: Stack, path: str, headers: dict) -> requests.Response:
    return requests.post(stack.url(path), headers=headers, timeout=10)


def assert_one_runs_worth(stack: Stack, job: dict, epoch: int) -> None:
    stored = list(items.iterate(stack.database(), job["id"]))
    chunks = list(stack.database().results.find({"job_id": job["id"]}, {"epoch": 1}))
    skus = [r["data"]["sku"] for r in stored]
    assert len(skus) == len(set(skus)) == 60, (len(skus), len(set(skus)))
    assert job["items_scraped"] == 60 and job["pages_crawled"] == 6
    assert {c.get("epoch", 0) for c in chunks} == {epoch}


@pytest.mark.parametrize("second", ["retry", "reset"])
def test_cancel_then_retry_or_reset_leaves_one_runs_items_and_counters(own_stack, second):
    headers = own_stack.register()
    with SiteServer(pages=6, delay=0.4) as site:
        job = own_stack.submit(headers, **crawl(site))
        wait_for(lambda: own_stack.job(job["id"], headers)["items_scraped"] >= 6, 30)
        assert post(own_stack, f"/jobs/{job['id']}/cancel", headers).status_code == 200
        # at once, within one progress interval: the first run is still crawling
        answer = post(own_stack, f"/jobs/{job['id']}/{second}", headers)
        assert answer.status_code == 200, answer.text
        done = own_stack.wait_job(job["id"], headers, statuses=("completed", "failed"), timeout=60)
        assert done["status"] == "completed", done
        # give a stale run every chance to write late, then check again
        wait_for(
            lambda: own_stack.database().logs.find_one(
                {"job_id": job["id"], "message": {"$regex": "^completed"}}
            ),
            10,
        )
    assert done["attempts"] == 2 if second == "retry" else done["attempts"] == 1
    assert_one_runs_worth(
        own_stack, own_stack.job(job["id"], headers), 0 if second == "retry" else 1
    )
    finals = own_stack.database().logs.count_documents(
        {"job_id": job["id"], "message": {"$regex": "^completed"}}
    )
    assert finals == 1  # the stale run never finished the job


def test_deleting_a_running_job_leaves_nothing_even_from_its_last_batch(own_stack):
    headers = own_stack.register()
    with SiteServer(pages=6, delay=0.3) as site:
        job = own_stack.submit(headers, **crawl(site))
        wait_for(lambda: own_stack.job(job["id"], headers)["items_scraped"] >= 3, 30)
        answer = requests.delete(own_stack.url(f"/jobs/{job['id']}"), headers=headers, timeout=10)
        assert answer.status_code == 204
        wait_for(
            lambda: "lost the job" in own_stack.logs["worker-scrapy"].read_text(),
            20,
            message="the worker to notice",
        )
    db = own_stack.database()
    wait_for(lambda: db.results.count_documents({"job_id": job["id"]}) == 0, 10, message="purge")
    wait_for(lambda: db.logs.count_documents({"job_id": job["id"]}) == 0, 10, message="logs")
    assert db.jobs.count_documents({"_id": job["id"]}) == 0
