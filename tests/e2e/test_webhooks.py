"""Webhooks with real workers and a loopback receiver: signed, retried with the same event id,
logged per attempt, sent from their own queue so a hanging receiver never holds a crawl."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests

from shared.webhooks import DeliveryDoc, WebhookDoc, verify
from testing.helpers import Stack, wait_for
from testing.receiver import Receiver
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def hooks_stack(redis_url, mongo_url, tmp_path_factory):
    stack = Stack(redis_url, mongo_url, f"wh_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("wh"))
    try:
        stack.start(
            api=True,
            queues=("scrapy",),
            WEBHOOK_RETRY_BASE_SECONDS="1",
            WEBHOOK_TIMEOUT_SECONDS="1",
            WEBHOOK_MAX_ATTEMPTS="3",
        )
        stack.start_worker("webhooks", concurrency=2)
        yield stack
    finally:
        stack.stop()


def one_page(site: SiteServer) -> dict:
    return {"url": site.url_for("/catalog/"), "engine": "scrapy", "selectors": {"t": "h1::text"}}


def test_a_failed_delivery_is_retried_with_the_same_event_id_and_a_valid_signature(hooks_stack):
    headers = hooks_stack.register()
    receiver = Receiver(codes=[500])
    try:
        check_retry_signature_log_and_redelivery(hooks_stack, headers, receiver)
    finally:
        receiver.close()
    # shared/webhooks.py WebhookDoc and DeliveryDoc are what the code reads these documents
    # as: a field written without being declared there is typed nowhere
    database = hooks_stack.database()
    stored = list(database.webhooks.find())
    attempts = list(database.webhook_deliveries.find())
    assert stored and len(attempts) >= 3  # the failed one, its retry, the redelivery
    for doc in stored:
        assert set(doc) <= _declared(WebhookDoc), doc
    for doc in attempts:
        assert set(doc) <= _declared(DeliveryDoc), doc


def _declared(typed: Any) -> set[str]:
    return set(typed.__required_keys__ | typed.__optional_keys__)


def check_retry_signature_log_and_redelivery(stack: Stack, headers: dict, receiver) -> None:
    made = requests.post(
        stack.url("/webhooks"),
        json={"webhook_url": receiver.url, "events": ["job.completed"]},
        headers=headers,
        timeout=10,
    )
    assert made.status_code == 201, made.text
    hook = made.json()
    secret = hook["secret"]
    with SiteServer(pages=1) as site:
        job = stack.submit(headers, **one_page(site))
        stack.wait_job(job["id"], headers)
    wait_for(lambda: len(receiver.calls) >= 2, 30, message="the retry")
    (first, body1), (second, body2) = receiver.calls[:2]
    assert first["X-ScrapeMaster-Event-Id"] == second["X-ScrapeMaster-Event-Id"]
    assert first["X-ScrapeMaster-Event"] == "job.completed"
    for sent, body in receiver.calls[:2]:
        assert verify(secret, body, sent["X-ScrapeMaster-Signature"])
        assert not verify("wrong-secret-0000", body, sent["X-ScrapeMaster-Signature"])
    payload = json.loads(body2)
    assert payload["job_id"] == job["id"] and payload["status"] == "completed"
    assert payload["id"] == first["X-ScrapeMaster-Event-Id"]

    def logged() -> list:
        answer = requests.get(
            stack.url(f"/webhooks/{hook['id']}/deliveries"), headers=headers, timeout=10
        )
        rows = answer.json()
        return rows if [r["state"] for r in rows] == ["delivered", "failed"] else []

    rows = wait_for(logged, 20, message="both attempts in the log")
    assert [r["attempt"] for r in rows] == [2, 1]
    assert rows[1]["status_code"] == 500 and rows[1]["next_retry_at"]
    assert len({r["event_id"] for r in rows}) == 1
    other = stack.register()
    for path in (f"/webhooks/{hook['id']}", f"/webhooks/{hook['id']}/deliveries"):
        assert requests.get(stack.url(path), headers=other, timeout=10).status_code == 404
    # redeliver on request: a new delivery of the same event (same event id)
    again = requests.post(
        stack.url(f"/webhooks/{hook['id']}/deliveries/{rows[1]['id']}/redeliver"),
        headers=headers,
        timeout=10,
    )
    assert again.status_code == 202 and again.json()["state"] == "pending"
    wait_for(lambda: len(receiver.calls) >= 3, 20, message="the redelivery")
    assert receiver.calls[2][0]["X-ScrapeMaster-Event-Id"] == first["X-ScrapeMaster-Event-Id"]


def test_a_hanging_receiver_times_out_while_crawls_go_on(hooks_stack):
    headers = hooks_stack.register()
    receiver = Receiver(hang=5)
    try:
        requests.post(
            hooks_stack.url("/webhooks"),
            json={"webhook_url": receiver.url, "events": ["job.started", "job.completed"]},
            headers=headers,
            timeout=10,
        ).raise_for_status()
        with SiteServer(pages=1) as site:
            first = hooks_stack.submit(headers, **one_page(site))
            second = hooks_stack.submit(headers, **one_page(site))
            for job in (first, second):
                done = hooks_stack.wait_job(job["id"], headers, timeout=20)
                assert done["status"] == "completed"
        wait_for(lambda: len(receiver.calls) >= 5, 30, message="timed-out attempts retried")
    finally:
        receiver.close()


def test_a_jobs_own_webhook_url_is_signed_with_the_account_secret(hooks_stack):
    headers = hooks_stack.register()
    secret = requests.post(
        hooks_stack.url("/auth/webhook-secret"), headers=headers, timeout=10
    ).json()["secret"]
    receiver = Receiver()
    try:
        with SiteServer(pages=1) as site:
            job = hooks_stack.submit(headers, webhook_url=receiver.url, **one_page(site))
            hooks_stack.wait_job(job["id"], headers)
        wait_for(lambda: receiver.calls, 20, message="the job's webhook")
    finally:
        receiver.close()
    sent, body = receiver.calls[0]
    assert sent["X-ScrapeMaster-Event"] == "job.completed"
    assert verify(secret, body, sent["X-ScrapeMaster-Signature"])
