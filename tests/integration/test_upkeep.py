"""Maintenance against the real store and broker: re-sending without reading the queues,
retention of finished jobs, the stored-items quota at submit."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta

import pytest
import redis

from shared import db as dbmod
from shared import items, jobs, tasks
from shared.counters import JobCounters
from shared.files import JobFiles
from shared.jobs import JobRepository
from shared.settings import set_settings
from testing.helpers import register_user

pytestmark = pytest.mark.integration

SPEC = {"url": "http://127.0.0.1:9/", "engine": "scrapy", "selectors": {"t": "h1::text"}}


@pytest.fixture
def upkeep(settings, monkeypatch):
    """The maintenance module on this test's settings, sending to this test's broker."""
    import workers
    from workers import reconcile
    from workers.app import create_celery

    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    set_settings(settings)
    monkeypatch.setattr(workers, "celery", create_celery(settings))
    reconcile._broker_restarted(client, dbmod.database(settings))  # the first look notes it
    yield reconcile
    client.flushdb()


def _waiting(settings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    return sum(tasks.queue_depths(client, tasks.SCRAPE_QUEUES).values())


def _finish(repo: JobRepository, job_id: str, found: int) -> None:
    claimed = repo.transition(job_id, "claim")
    repo.finish(job_id, "complete", claimed["run_id"], items_scraped=found, pages_crawled=1)


def test_a_job_whose_send_failed_is_sent_by_the_next_reconcile(db, settings, upkeep):
    repo = JobRepository(db)
    job = repo.create("u1", SPEC)
    jobs.mark_unsent(db, job["_id"])
    assert upkeep.reconcile(grace_seconds=3600)["resent"] == 1
    assert _waiting(settings) == 1 and "unsent" not in repo.get(job["_id"])
    assert upkeep.reconcile(grace_seconds=3600)["resent"] == 0  # its message is there now


def test_pending_jobs_are_resent_only_when_the_broker_holds_fewer_messages(db, settings, upkeep):
    repo = JobRepository(db)
    made = [repo.create("u1", SPEC) for _ in range(3)]
    # every job has its message: nothing to do, even past the grace
    from celery import Celery

    sender = Celery(broker=settings.redis_url)
    sender.conf.broker_transport_options = tasks.broker_transport_options(3600)
    for job in made:
        sender.send_task(tasks.SCRAPE, **tasks.scrape_options(job))
    assert upkeep.reconcile(grace_seconds=0)["resent"] == 0
    # two messages lost: the two longest-waiting pending jobs are sent again
    redis.Redis.from_url(settings.redis_url).flushdb()  # the same server, emptied
    sender.send_task(tasks.SCRAPE, **tasks.scrape_options(made[2]))
    assert upkeep.reconcile(grace_seconds=0)["resent"] == 2
    assert _waiting(settings) == 3


def test_retention_deletes_old_finished_jobs_with_their_items(db, settings, upkeep):
    set_settings(replace(settings, job_retention_days=7))
    repo = JobRepository(db)
    old, recent, waiting = (repo.create("u2", SPEC) for _ in range(3))
    for job in (old, recent):
        _finish(repo, job["_id"], 10)
        items.write(db, job["_id"], [{"n": i} for i in range(10)])
        jobs.log(db, job["_id"], "INFO", "done")
        JobFiles(db).put(job["_id"], "u2", "http://127.0.0.1:9/", "pdf", "application/pdf", b"%PDF")
    long_ago = jobs.now() - timedelta(days=8)
    for job in (old, waiting, recent):
        db.jobs.update_one({"_id": job["_id"]}, {"$set": {"created_at": long_ago}})
    for job in (old, waiting):  # `recent` was retried and finished again today
        db.jobs.update_one({"_id": job["_id"]}, {"$set": {"updated_at": long_ago}})
    kept = {"pending": long_ago, "failed": jobs.now()}  # a due retry; a recent attempt
    db.webhook_deliveries.insert_many(
        [{"_id": "old", "state": "delivered", "timestamp": long_ago}]
        + [{"_id": state, "state": state, "timestamp": at} for state, at in kept.items()]
    )
    assert upkeep.apply_retention() == {"deleted": 1, "delivery_attempts": 1}
    assert sorted(a["_id"] for a in db.webhook_deliveries.find()) == ["failed", "pending"]
    assert repo.get(old["_id"]) is None
    assert items.count(db, old["_id"]) == 0 and db.logs.count_documents({"job_id": old["_id"]}) == 0
    assert JobFiles(db).list(old["_id"])[0] == 0 and JobFiles(db).list(recent["_id"])[0] == 1
    assert db["fs.chunks"].count_documents({}) == 1  # the old job's file took its chunk along
    assert repo.get(recent["_id"]) and repo.get(waiting["_id"])  # pending jobs are never old
    assert JobCounters(db).stored_items("u2") == 10
    totals = JobCounters.by_status(JobCounters.cells(JobCounters(db).of("u2")))
    assert totals == {
        status: db.jobs.count_documents({"owner_id": "u2", "status": status})
        for status in jobs.STATUSES
    }


def test_a_full_account_cannot_submit(settings):
    from api.app import create_app

    client = create_app(replace(settings, max_stored_items_per_user=15)).test_client()
    auth = register_user(client)
    job = client.post("/api/v1/jobs", json=SPEC, headers=auth).get_json()
    _finish(JobRepository(dbmod.database(settings)), job["id"], 20)
    refused = client.post("/api/v1/jobs", json=SPEC, headers=auth)
    assert (
        refused.status_code == 409 and "MAX_STORED_ITEMS_PER_USER" in refused.get_json()["detail"]
    )
    client.post(f"/api/v1/jobs/{job['id']}/reset", headers=auth)
    assert client.post("/api/v1/jobs", json=SPEC, headers=auth).status_code == 201


def test_a_restarted_broker_is_noticed_even_by_a_restarted_reconciler(db, tmp_path):
    from deploy import embedded
    from workers import reconcile

    port = embedded.free_port()
    service = embedded.start_redis(tmp_path / "r", port)
    try:
        client = redis.Redis.from_url(service.url)
        assert reconcile._broker_restarted(client, db) is False  # first look: noted
        assert reconcile._broker_restarted(client, db) is False  # the same server
        service.stop()
        service = embedded.start_redis(tmp_path / "r", port)
        reconcile._broker.clear()  # a new maintenance process remembers nothing itself
        assert reconcile._broker_restarted(client, db) is True
        assert reconcile._broker_restarted(client, db) is False  # noticed once
    finally:
        service.stop()


def test_a_job_pending_past_its_deadline_is_sent_again_then_less_often(db, settings, upkeep):
    """Its message may be held by a worker that was killed (Redis keeps it for an hour)."""
    repo = JobRepository(db)
    job = repo.create("u3", SPEC)
    held = redis.Redis.from_url(settings.redis_url)
    held.hset("unacked", "tag-of-a-dead-worker", "{}")  # what a killed worker leaves
    assert upkeep.reconcile(grace_seconds=0)["resent"] == 0  # not due yet, and not missing
    first = jobs.now() - timedelta(seconds=1)
    db.jobs.update_one({"_id": job["_id"]}, {"$set": {"resend_at": first}})
    assert upkeep.reconcile(grace_seconds=3600)["resent"] == 1
    again = repo.get(job["_id"])
    assert again["resends"] == 1
    gap = (again["resend_at"] - again["updated_at"]).total_seconds()
    assert gap == pytest.approx(2 * settings.resend_after_seconds, abs=1)
    assert upkeep.reconcile(grace_seconds=3600)["resent"] == 0


def _stream(settings, job_id: str) -> list[dict]:
    from shared import events

    client = redis.Redis.from_url(settings.redis_url)
    return [events.decode(i, f) for i, f in client.xrange(events.job_stream(job_id))]


def _orphan(db, repo: JobRepository, owner: str, **fields) -> dict:
    """A running job whose worker stopped beating a minute ago, with 20 items stored."""
    job = repo.transition(repo.create(owner, SPEC)["_id"], "claim")
    items.write(db, job["_id"], [{"n": i} for i in range(20)])
    old = jobs.now() - timedelta(minutes=1)
    db.jobs.update_one(
        {"_id": job["_id"]}, {"$set": {"heartbeat_at": old, "items_scraped": 10, **fields}}
    )
    return repo.get(job["_id"])


def test_a_job_whose_worker_died_past_max_job_attempts_fails_worker_lost(db, settings, upkeep):
    from shared import events

    set_settings(replace(settings, max_job_attempts=2))
    repo = JobRepository(db)
    again = _orphan(db, repo, "u-poison", takeovers=1)
    poison = _orphan(db, repo, "u-poison", takeovers=2)
    result = upkeep.reconcile(grace_seconds=3600)
    assert result["requeued"] == 1 and result["failed_worker_lost"] == 1
    requeued = repo.get(again["_id"])
    assert requeued["status"] == "pending" and requeued["takeovers"] == 2
    failed = repo.get(poison["_id"])
    assert failed["status"] == "failed" and failed["error"]["type"] == "worker_lost"
    assert "died 3 times" in failed["error"]["message"]
    assert failed["items_scraped"] == 20  # what it stored, not its last progress write
    assert [e["type"] for e in _stream(settings, poison["_id"])] == [events.FAILED]
    assert _stream(settings, poison["_id"])[0]["data"]["error"]["type"] == "worker_lost"
    assert not failed["outbox"] and failed["outbox_pending"] == 0
    totals = JobCounters.by_status(JobCounters.cells(JobCounters(db).of("u-poison")))
    assert totals["failed"] == 1 and totals["pending"] == 1 and totals["running"] == 0
    assert JobCounters(db).stored_items("u-poison") == 20 + 10


def test_a_cancel_whose_run_died_is_settled_once_with_its_job_cancelled(db, settings, upkeep):
    from shared import events

    set_settings(replace(settings, job_stale_seconds=1))
    repo = JobRepository(db)
    job = _orphan(db, repo, "u-settle")
    repo.transition(job["_id"], "cancel", completed_at=jobs.now(), unsettled=True)
    db.jobs.update_one(
        {"_id": job["_id"]}, {"$set": {"updated_at": jobs.now() - timedelta(minutes=1)}}
    )
    upkeep.reconcile(grace_seconds=3600)
    settled = repo.get(job["_id"])
    assert settled["status"] == "cancelled" and settled["items_scraped"] == 20
    assert "unsettled" not in settled and not settled["outbox_pending"]
    cancelled = _stream(settings, job["_id"])
    assert [(e["type"], e["data"]["items_scraped"]) for e in cancelled] == [(events.CANCELLED, 20)]
    # its run, should it wake up now, finds it settled: no second job.cancelled
    assert not repo.store_counters(job["_id"], job["run_id"], {"items_scraped": 20})
    upkeep.reconcile(grace_seconds=3600)
    assert len(_stream(settings, job["_id"])) == 1


def test_after_redis_restarted_pending_webhook_attempts_are_sent_again(db, settings, upkeep):
    from shared.webhooks import WebhookRepository

    hooks = WebhookRepository(db)
    hook = hooks.create("u-hook", "http://127.0.0.1:9/hook", ["job.completed"], None)
    event = {"id": "1-0", "type": "job.completed", "job_id": "j1", "timestamp": "t", "data": {}}
    waiting = hooks.first_attempt(hook["_id"], hook["webhook_url"], "u-hook", event)
    done = hooks.first_attempt(hook["_id"], hook["webhook_url"], "u-hook", event)
    hooks.record(done, state="delivered")
    client = redis.Redis.from_url(settings.redis_url)

    def queued() -> int:
        return tasks.queue_depths(client, (tasks.QUEUE_WEBHOOKS,))[tasks.QUEUE_WEBHOOKS]

    assert upkeep.reconcile(grace_seconds=3600)["deliveries_resent"] == 0  # same broker
    assert queued() == 0
    # a new Redis (its run id changed): the pending attempt's message went with the old one
    db.meta.update_one({"_id": "broker"}, {"$set": {"run_id": "an-earlier-redis"}})
    assert upkeep.reconcile(grace_seconds=3600)["deliveries_resent"] == 1
    assert queued() == 1
    message = json.loads(client.lrange(tasks.QUEUE_WEBHOOKS, 0, -1)[0])
    assert json.loads(base64.b64decode(message["body"]))[0] == [waiting]  # not the delivered one
