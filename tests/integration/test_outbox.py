"""The event outbox against a real store and a real redis-server that goes away: events written
with a job's state wait while Redis is down, are published in order once it is back, and keep
their id and their deliveries however often publishing is repeated."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from deploy import embedded
from shared import events, jobs, outbox
from shared.events import EventLog
from shared.jobs import JobRepository
from shared.webhooks import PENDING, WebhookRepository

pytestmark = pytest.mark.integration

SPEC = {"url": "http://127.0.0.1:9/", "engine": "scrapy", "selectors": {"t": "h1::text"}}


@pytest.fixture
def broker(tmp_path) -> Iterator[dict]:
    """A redis-server of this test, which it may kill and bring back empty."""
    port = embedded.free_port()
    state = {"service": embedded.start_redis(tmp_path / "r0", port), "port": port, "runs": 0}

    def restart_empty() -> None:
        state["runs"] += 1
        state["service"] = embedded.start_redis(tmp_path / f"r{state['runs']}", port)

    def kill() -> None:
        state["service"].proc.kill()
        state["service"].proc.wait(10)

    state.update(restart_empty=restart_empty, kill=kill, url=state["service"].url)
    yield state
    state["service"].stop()


def setup(db, settings, broker) -> tuple[dict, outbox.Outbox, list[str], dict]:
    """A running job of a user with a webhook on job.completed; an outbox that records what
    it would send (the webhooks queue is not under test here)."""
    log = EventLog.from_settings(replace(settings, redis_url=broker["url"]))
    sent: list[str] = []
    box = outbox.Outbox(db, log, sent.append)
    owner = uuid.uuid4().hex
    hook = WebhookRepository(db).create(owner, "http://127.0.0.1:9/hook", ["job.completed"], None)
    repo = JobRepository(db)
    job = repo.create(owner, SPEC)
    job = repo.transition(job["_id"], "claim")
    return job, box, sent, hook


def complete(db, job: dict) -> dict:
    data = {"status": jobs.COMPLETED, "items_scraped": 3}
    done = JobRepository(db).finish(
        job["_id"],
        "complete",
        job["run_id"],
        current=job,
        items_scraped=3,
        **outbox.fields(events.COMPLETED, data),
    )
    assert done is not None
    return done


def test_events_written_while_redis_is_down_are_published_in_order_when_it_is_back(
    db, settings, broker
):
    job, box, sent, hook = setup(db, settings, broker)
    assert outbox.add(db, job, events.STARTED, {"status": "running"}, run_id=job["run_id"])
    broker["kill"]()
    complete(db, job)
    assert box.publish(job["_id"]) == 2  # nothing published, nothing lost
    assert sent == []
    stored = db.jobs.find_one({"_id": job["_id"]})
    assert stored["status"] == "completed" and len(stored["outbox"]) == 2
    assert stored["outbox_pending"] == 2
    # the reconciler leaves alone what its writer may be publishing right now
    assert box.drain(older_than=3600) == 0
    broker["restart_empty"]()
    assert box.drain(older_than=0) == 1
    client = redis.Redis.from_url(broker["url"])
    stream = [events.decode(i, f) for i, f in client.xrange(events.job_stream(job["_id"]))]
    assert [e["type"] for e in stream] == [events.STARTED, events.COMPLETED]
    assert stream[1]["data"]["items_scraped"] == 3
    user = client.xrange(events.user_stream(job["owner_id"]))
    assert [i.decode() for i, _ in user] == [e["id"] for e in stream]
    attempts = list(db.webhook_deliveries.find({"webhook_id": hook["_id"]}))
    assert len(attempts) == 1 and sent == [attempts[0]["_id"]]
    assert attempts[0]["event_id"] == stream[1]["id"] and attempts[0]["state"] == PENDING
    stored = db.jobs.find_one({"_id": job["_id"]})
    assert stored["outbox"] == {} and stored["outbox_pending"] == 0


def test_a_repeated_publish_keeps_the_event_id_and_plans_no_second_delivery(db, settings, broker):
    job, box, sent, hook = setup(db, settings, broker)
    complete(db, job)
    pending = db.jobs.find_one({"_id": job["_id"]})["outbox"]
    assert box.publish(job["_id"]) == 0
    client = redis.Redis.from_url(broker["url"])
    first = client.xrange(events.job_stream(job["_id"]))
    event_id = first[0][0].decode()
    # a publisher that died after publishing, before taking the event out of the outbox
    (key, entry), *_ = pending.items()
    db.jobs.update_one(
        {"_id": job["_id"]},
        {"$set": {f"outbox.{key}": {**entry, "id": event_id}, "outbox_pending": 1}},
    )
    assert box.publish(job["_id"]) == 0
    assert client.xrange(events.job_stream(job["_id"])) == first  # not added twice
    # the same, after Redis lost everything: the event comes back under its first id
    broker["kill"]()
    broker["restart_empty"]()
    db.jobs.update_one(
        {"_id": job["_id"]},
        {"$set": {f"outbox.{key}": {**entry, "id": event_id}, "outbox_pending": 1}},
    )
    assert box.publish(job["_id"]) == 0
    client = redis.Redis.from_url(broker["url"])
    again = [events.decode(i, f) for i, f in client.xrange(events.job_stream(job["_id"]))]
    assert [(e["id"], e["type"]) for e in again] == [(event_id, events.COMPLETED)]
    attempts = list(db.webhook_deliveries.find({"webhook_id": hook["_id"]}))
    assert len(attempts) == 1 and attempts[0]["event_id"] == event_id
    assert db.jobs.find_one({"_id": job["_id"]})["outbox_pending"] == 0
    # its first attempt was still pending: sent again (at least once), never re-planned
    assert sent == [attempts[0]["_id"]] * 3
