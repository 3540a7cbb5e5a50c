"""What a user is told survives faults: a terminal event written while Redis is down reaches its
stream and its webhook once Redis is back, under one event id; a cancel settled by the reconciler
after its worker died still says job.cancelled; a job whose worker dies every time it runs fails
`worker_lost` after MAX_JOB_ATTEMPTS take-overs, and a retry by hand still runs it."""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis
import requests

from shared import events, items
from testing.helpers import OwnRedis, Stack, wait_for
from testing.receiver import Receiver
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CATALOG = {
    "engine": "scrapy",
    "selectors": {"sku": "./@data-sku", "title": "h2.product-title::text"},
    "config": {
        "item_selector": "div.product",
        "follow_links": True,
        "link_selector": "li.next a::attr(href)",
    },
}


@pytest.fixture(scope="module")
def own(mongo_url, tmp_path_factory) -> Iterator[tuple[Stack, OwnRedis]]:
    workdir = tmp_path_factory.mktemp("durable")
    broker = OwnRedis(workdir / "redis")
    stack = Stack(broker.url, mongo_url, f"durable_{uuid.uuid4().hex[:8]}", workdir)
    try:
        stack.start(
            api=True,
            queues=("scrapy",),
            JOB_STALE_SECONDS="3",
            RECONCILE_INTERVAL_SECONDS="1",
            MAX_JOB_ATTEMPTS="1",
            WEBHOOK_RETRY_BASE_SECONDS="1",
            WEBHOOK_TIMEOUT_SECONDS="2",
        )
        stack.start_worker("webhooks")
        stack.start_worker("maintenance")
        start_beat(stack)
        yield stack, broker
    finally:
        stack.stop()
        broker.stop()


def start_beat(stack: Stack) -> None:
    argv = [sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO"]
    stack.spawn("beat", argv)


def hook_for(stack: Stack, headers: dict, url: str, kinds: list[str]) -> dict:
    made = requests.post(
        stack.url("/webhooks"),
        json={"webhook_url": url, "events": kinds},
        headers=headers,
        timeout=10,
    )
    assert made.status_code == 201, made.text
    return made.json()


def calls_of(receiver: Receiver, job_id: str, kind: str) -> list[tuple[dict, dict]]:
    found = []
    for headers, body in list(receiver.calls):
        payload = json.loads(body)
        if payload.get("job_id") == job_id and payload.get("event") == kind:
            found.append((headers, payload))
    return found


def stream_events(stack: Stack, job_id: str) -> list[dict]:
    client = redis.Redis.from_url(stack.redis_url)
    return [events.decode(i, f) for i, f in client.xrange(events.job_stream(job_id))]


def deliveries(stack: Stack, hook: dict, headers: dict) -> list[dict]:
    answer = requests.get(
        stack.url(f"/webhooks/{hook['id']}/deliveries"), headers=headers, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_cancel_settled_by_the_reconciler_says_job_cancelled_with_the_stored_count(own):
    stack, _ = own
    headers = stack.register()
    receiver = Receiver()
    try:
        hook = hook_for(stack, headers, receiver.url, ["job.cancelled"])
        with SiteServer(pages=30, delay=0.3) as site:
            job = stack.submit(headers, url=f"{site.url}/catalog/", **CATALOG)
            wait_for(lambda: stack.job(job["id"], headers)["pages_crawled"] >= 2, 30)
            # the run dies, then the user cancels: nobody but the reconciler is left to say so
            for pid in stack.children("worker-scrapy"):
                os.kill(pid, signal.SIGKILL)
            answer = requests.post(
                stack.url(f"/jobs/{job['id']}/cancel"), headers=headers, timeout=10
            )
            assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
            got = wait_for(
                lambda: calls_of(receiver, job["id"], "job.cancelled"),
                60,
                message="job.cancelled from the reconciler",
            )
        sent, payload = got[0]
        done = stack.job(job["id"], headers)
        stored = items.count(stack.database(), job["id"])
        assert done["status"] == "cancelled" and done["items_scraped"] == stored >= 10
        assert payload["items_scraped"] == stored and payload["status"] == "cancelled"
        assert sent["X-ScrapeMaster-Event-Id"] == payload["id"]
        terminal = [e for e in stream_events(stack, job["id"]) if e["type"] in events.TERMINAL]
        assert [e["id"] for e in terminal] == [payload["id"]]  # one, the same id
        logged = deliveries(stack, hook, headers)
        assert [(d["event_id"], d["event"]) for d in logged] == [(payload["id"], "job.cancelled")]
    finally:
        receiver.close()


def test_a_job_whose_worker_dies_every_time_fails_worker_lost_and_a_retry_runs_it(own):
    stack, _ = own
    headers = stack.register()
    receiver = Receiver()
    try:
        hook_for(stack, headers, receiver.url, ["job.failed"])
        with SiteServer(pages=6, delay=0.5) as site:
            job = stack.submit(headers, url=f"{site.url}/catalog/", **CATALOG)
            for attempt in (1, 2):  # MAX_JOB_ATTEMPTS=1: one take-over, then no more
                wait_for(
                    lambda n=attempt: (lambda j: j["status"] == "running" and j["attempts"] == n)(
                        stack.job(job["id"], headers)
                    ),
                    60,
                    message=f"run {attempt}",
                )
                wait_for(lambda: stack.children("worker-scrapy"), 30, message="a pool process")
                for pid in stack.children("worker-scrapy"):
                    os.kill(pid, signal.SIGKILL)
            failed = stack.wait_job(job["id"], headers, statuses=("failed",), timeout=60)
            assert failed["error"]["type"] == "worker_lost"
            assert "died 2 times" in failed["error"]["message"]
            assert "MAX_JOB_ATTEMPTS" in failed["error"]["message"]
            assert failed["items_scraped"] == items.count(stack.database(), job["id"])
            got = wait_for(lambda: calls_of(receiver, job["id"], "job.failed"), 30)
            assert got[0][1]["error"]["type"] == "worker_lost"
            # by hand it runs again, with a fresh count of take-overs
            answer = requests.post(
                stack.url(f"/jobs/{job['id']}/retry"), headers=headers, timeout=10
            )
            assert answer.status_code == 200, answer.text
            done = stack.wait_job(job["id"], headers, timeout=90)
        assert done["status"] == "completed" and done["items_scraped"] == 60
    finally:
        receiver.close()


def test_a_terminal_event_written_while_redis_is_down_arrives_once_it_is_back(own):
    """Last in the module: it kills the stack's Redis."""
    stack, broker = own
    headers = stack.register()
    receiver = Receiver()
    try:
        hook = hook_for(stack, headers, receiver.url, ["job.completed"])
        with SiteServer(pages=8, delay=0.4) as site:
            job = stack.submit(headers, url=f"{site.url}/catalog/", **CATALOG)
            wait_for(lambda: stack.job(job["id"], headers)["pages_crawled"] >= 1, 30)
            broker.kill()  # the job completes while Redis is gone
            database = stack.database()
            done = wait_for(
                lambda: database.jobs.find_one({"_id": job["id"], "status": "completed"}),
                60,
                message="the job to complete without Redis",
            )
            assert done.get("outbox_pending")  # its job.completed waits in MongoDB
            assert not receiver.calls
            broker.start(fresh=True)
            if stack.procs["beat"].poll() is not None:
                start_beat(stack)  # what the supervisor does for a beat that exited
            got = wait_for(
                lambda: calls_of(receiver, job["id"], "job.completed"),
                90,
                message="job.completed once Redis is back",
            )
        sent, payload = got[0]
        assert payload["items_scraped"] == 80 and payload["status"] == "completed"
        assert sent["X-ScrapeMaster-Event-Id"] == payload["id"]
        terminal = [e for e in stream_events(stack, job["id"]) if e["type"] in events.TERMINAL]
        assert [e["id"] for e in terminal] == [payload["id"]]
        assert terminal[0]["data"]["items_scraped"] == 80
        logged = deliveries(stack, hook, headers)
        assert [(d["event_id"], d["state"]) for d in logged] == [(payload["id"], "delivered")]
        wait_for(
            lambda: not database.jobs.find_one({"_id": job["id"]}).get("outbox_pending"),
            10,
            message="the outbox emptied",
        )
        # the job's SSE stream ends with that same event
        with requests.get(
            stack.url(f"/jobs/{job['id']}/events"), headers=headers, stream=True, timeout=30
        ) as answer:
            lines = list(answer.iter_lines(decode_unicode=True))
        ids = [line.split(": ", 1)[1] for line in lines if line.startswith("id: ")]
        assert ids and ids[-1] == payload["id"]
    finally:
        receiver.close()
