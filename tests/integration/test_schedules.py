"""Schedules over HTTP and the scheduler against a real MongoDB wire server: validation,
ownership, run now, history, exactly one run per slot, overlap, recovery, settling, changes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.app import create_app
from shared import changes, jobs
from shared import items as stored
from shared.db import ensure_indexes
from shared.run_history import RunCounters
from shared.schedules import (
    CRON,
    MISSED,
    SKIPPED,
    STARTED,
    ScheduleDoc,
    ScheduleRepository,
    ScheduleRunDoc,
)
from shared.scheduling import UNSTARTED_GRACE, Scheduler
from testing.helpers import register_user

pytestmark = pytest.mark.integration
JOB = {"url": "http://127.0.0.1:9/catalog/", "selectors": {"title": "h1::text"}}
BODY = {"name": "hourly catalog", "cron": "0 * * * *", "job": JOB}


def make(client, headers, **changes_) -> dict:
    answer = client.post("/api/v1/schedules", json={**BODY, **changes_}, headers=headers)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_a_schedule_is_created_read_changed_and_deleted_keeping_its_history(client, auth):
    made = make(client, auth, timezone="Europe/Berlin", key="title")
    assert made["enabled"] is True and made["overlap"] == "skip" and made["last_run"] is None
    assert made["next_run"].endswith(":00:00.000Z") and made["job"]["url"] == JOB["url"]
    assert [s["id"] for s in client.get("/api/v1/schedules", headers=auth).get_json()] == [
        made["id"]
    ]
    off = client.patch(f"/api/v1/schedules/{made['id']}", json={"enabled": False}, headers=auth)
    assert off.status_code == 200 and off.get_json()["next_run"] is None
    on = client.patch(
        f"/api/v1/schedules/{made['id']}",
        json={"enabled": True, "cron": "30 6 * * 1"},
        headers=auth,
    ).get_json()
    assert on["next_run"] is not None and on["cron"] == "30 6 * * 1"
    started = client.post(f"/api/v1/schedules/{made['id']}/run", headers=auth)
    assert started.status_code == 202 and started.get_json()["status"] == "queued"
    job = client.get(f"/api/v1/jobs/{started.get_json()['job_id']}", headers=auth).get_json()
    assert job["schedule_id"] == made["id"] and job["status"] == "pending"
    listed = client.get(f"/api/v1/jobs?schedule_id={made['id']}", headers=auth).get_json()
    assert [j["id"] for j in listed] == [job["id"]]
    assert client.delete(f"/api/v1/schedules/{made['id']}", headers=auth).status_code == 204
    assert client.get(f"/api/v1/schedules/{made['id']}", headers=auth).status_code == 404
    history = client.get(
        f"/api/v1/schedules/history?schedule_id={made['id']}", headers=auth
    ).get_json()
    assert history["total"] == 1
    (run,) = history["runs"]
    assert run["trigger"] == "manual" and run["status"] == "started"
    assert run["job_id"] == job["id"] and run["scheduled_for"].endswith("Z")


@pytest.mark.parametrize(
    ("changes_", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * * * *"}, "cron"),  # every second
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"job": {"url": "not a url"}}, "job.url"),
        ({"job": {"url": "http://127.0.0.1:9/", "engine": "lynx"}}, "job.engine"),
        ({"overlap": "sometimes"}, "overlap"),
        ({"name": ""}, "name"),
        ({"job": None}, "job"),
    ],
)
def test_bad_schedules_answer_422_naming_the_field(client, auth, changes_, field):
    answer = client.post("/api/v1/schedules", json={**BODY, **changes_}, headers=auth)
    body = answer.get_json()
    assert answer.status_code == 422 and field in body["errors"], body
    assert body["type"] == "validation_error"


def test_a_bad_patch_answers_422_and_changes_nothing(client, auth):
    made = make(client, auth)
    for change, field in [({"timezone": "Mars/Base"}, "timezone"), ({"cron": "1 2 3"}, "cron")]:
        answer = client.patch(f"/api/v1/schedules/{made['id']}", json=change, headers=auth)
        assert answer.status_code == 422 and field in answer.get_json()["errors"]
    assert client.get(f"/api/v1/schedules/{made['id']}", headers=auth).get_json() == made


def test_limits_interval_and_count_per_user(settings):
    client = create_app(
        settings.with_(max_schedules_per_user=2, schedule_min_interval_seconds=300)
    ).test_client()
    headers = register_user(client)
    too_often = client.post(
        "/api/v1/schedules", json={**BODY, "cron": "*/2 * * * *"}, headers=headers
    )
    assert too_often.status_code == 422
    assert "SCHEDULE_MIN_INTERVAL_SECONDS" in too_often.get_json()["errors"]["cron"][0]
    for _ in range(2):
        make(client, headers)
    third = client.post("/api/v1/schedules", json=BODY, headers=headers)
    assert third.status_code == 409 and "MAX_SCHEDULES_PER_USER" in third.get_json()["detail"]


def test_another_users_schedule_is_not_found(client, auth):
    made = make(client, auth)
    other = register_user(client)
    base = f"/api/v1/schedules/{made['id']}"
    assert client.get(base, headers=other).status_code == 404
    assert client.patch(base, json={"enabled": False}, headers=other).status_code == 404
    assert client.post(f"{base}/run", headers=other).status_code == 404
    assert client.get(f"{base}/changes", headers=other).status_code == 404
    assert client.delete(base, headers=other).status_code == 404
    assert client.get("/api/v1/schedules", headers=other).get_json() == []
    client.post(f"{base}/run", headers=auth)
    assert client.get("/api/v1/schedules/history", headers=other).get_json()["total"] == 0
    assert client.get(base, headers=auth).status_code == 200


# -- the scheduler, with an injected clock, on a real database --------------------------------


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def scheduled(db, cron="* * * * *", overlap="skip", created=None) -> dict:
    ensure_indexes(db)
    created = created or datetime(2026, 11, 24, 12, 0, 10, tzinfo=UTC)
    body = {"name": "s", "cron": cron, "timezone": "UTC", "overlap": overlap, "job": JOB}
    return ScheduleRepository(db).create("owner-1", body, created)


def test_schedulers_racing_on_one_slot_start_exactly_one_job(db):
    doc = scheduled(db, overlap="allow")
    clock = Clock(datetime(2026, 11, 24, 12, 1, 0, 200000, tzinfo=UTC))
    sent: list[str] = []
    racers = [Scheduler(db, lambda job: sent.append(job["_id"]), clock=clock) for _ in range(6)]
    gate = threading.Barrier(len(racers))

    def race(scheduler: Scheduler) -> None:
        gate.wait()
        scheduler.tick()

    threads = [threading.Thread(target=race, args=(s,)) for s in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = list(db.schedule_runs.find({"schedule_id": doc["_id"]}))
    assert len(runs) == 1 and runs[0]["status"] == STARTED
    assert db.jobs.count_documents({"schedule_id": doc["_id"]}) == 1
    assert sent == [runs[0]["job_id"]]
    assert db.schedules.find_one({"_id": doc["_id"]})["next_run"] == datetime(
        2026, 11, 24, 12, 2, tzinfo=UTC
    )


def test_overlap_skip_while_the_previous_job_runs_then_start_again(db):
    doc = scheduled(db)
    clock = Clock(datetime(2026, 11, 24, 12, 1, 1, tzinfo=UTC))
    scheduler = Scheduler(db, lambda job: None, clock=clock)
    assert scheduler.tick()[STARTED] == 1
    clock.now += timedelta(minutes=1)
    assert scheduler.tick()[SKIPPED] == 1  # the first job is still pending
    db.jobs.update_many({"schedule_id": doc["_id"]}, {"$set": {"status": jobs.COMPLETED}})
    clock.now += timedelta(minutes=1)
    assert scheduler.tick()[STARTED] == 1
    statuses = [r["status"] for r in db.schedule_runs.find().sort("scheduled_for", 1)]
    assert statuses == [STARTED, SKIPPED, STARTED]
    skipped = db.schedule_runs.find_one({"status": SKIPPED})
    assert skipped["job_id"] is None and "overlap" in skipped["error"]


def test_a_restart_after_downtime_fires_once_and_records_the_missed_slots(db):
    doc = scheduled(db)
    clock = Clock(datetime(2026, 11, 24, 12, 7, 30, tzinfo=UTC))  # down since 12:00:10
    counts = Scheduler(db, lambda job: None, misfire_seconds=300, clock=clock).tick()
    assert counts[STARTED] == 1 and counts[MISSED] == 6
    started = db.schedule_runs.find_one({"schedule_id": doc["_id"], "status": STARTED})
    assert started["scheduled_for"] == datetime(2026, 11, 24, 12, 7, tzinfo=UTC)
    assert started["trigger"] == CRON
    # a second scheduler with the same stale view adds nothing
    again = Scheduler(db, lambda job: None, clock=clock)
    assert again.fire({**doc, "next_run": doc["next_run"]}, clock.now) == []
    assert db.jobs.count_documents({}) == 1


def test_a_run_whose_creator_died_before_the_job_gets_its_job_once(db):
    doc = scheduled(db)
    repo = ScheduleRepository(db)
    when = datetime(2026, 11, 24, 12, 1, tzinfo=UTC)
    run = repo.record(doc, when, CRON, STARTED, when)  # ...and the process died here
    sent: list[str] = []
    clock = Clock(when + UNSTARTED_GRACE / 2)
    scheduler = Scheduler(db, lambda job: sent.append(job["_id"]), clock=clock)
    assert scheduler.recover(clock.now) == 0  # its creator may just be slow
    clock.now = when + UNSTARTED_GRACE * 2
    assert scheduler.recover(clock.now) == 1
    assert scheduler.recover(clock.now) == 0
    assert sent == [run["job_id"]] and db.jobs.find_one({"_id": run["job_id"]}) is not None


def test_history_follows_the_job_to_its_end(db):
    scheduled(db)
    clock = Clock(datetime(2026, 11, 24, 12, 1, 1, tzinfo=UTC))
    scheduler = Scheduler(db, lambda job: None, clock=clock)
    scheduler.tick()
    run = db.schedule_runs.find_one()
    assert scheduler.settle() == 0  # still pending
    db.jobs.update_one(
        {"_id": run["job_id"]},
        {
            "$set": {
                "status": jobs.FAILED,
                "items_scraped": 3,
                "error": {"type": "http_error", "message": "HTTP 500"},
                "completed_at": clock.now,
            }
        },
    )
    assert scheduler.settle() == 1
    done = db.schedule_runs.find_one({"_id": run["_id"]})
    assert done["status"] == "failed" and done["items_scraped"] == 3
    assert done["error"] == "HTTP 500"
    clock.now += timedelta(minutes=1)
    scheduler.tick()
    second = db.schedule_runs.find_one({"_id": {"$ne": run["_id"]}})
    db.jobs.delete_one({"_id": second["job_id"]})
    assert scheduler.settle() == 0  # a job just made and not found yet may be a lagging read
    clock.now += UNSTARTED_GRACE
    assert scheduler.settle() == 1
    assert db.schedule_runs.find_one({"_id": second["_id"]})["status"] == "cancelled"


def test_stored_schedules_and_runs_hold_only_the_fields_their_types_declare(db):
    # shared/schedules.py ScheduleDoc and ScheduleRunDoc are what the code reads these
    # documents as: a field written without being declared there is typed nowhere
    made = scheduled(db)
    clock = Clock(datetime(2026, 11, 24, 12, 1, 1, tzinfo=UTC))
    scheduler = Scheduler(
        db,
        lambda job: None,
        on_settled=lambda run, job: changes.detect(db, run, job, None),
        clock=clock,
    )
    for _ in range(2):  # a first run compared with nothing, then one compared with it
        scheduler.tick()
        db.jobs.update_many(
            {"schedule_id": made["_id"]},
            {"$set": {"status": jobs.COMPLETED, "completed_at": clock.now}},
        )
        assert scheduler.settle() == 1
        clock.now += timedelta(minutes=1)
    clock.now += timedelta(minutes=10)  # down past the misfire grace: missed slots
    scheduler.tick()
    ScheduleRepository(db).suspend(db.schedules.find_one({"_id": made["_id"]}))
    runs = list(db.schedule_runs.find())
    assert {run["status"] for run in runs} == {jobs.COMPLETED, STARTED, MISSED}
    assert any(run.get("compared_with") for run in runs)
    for run in runs:
        assert set(run) <= _declared(ScheduleRunDoc), run
    assert set(db.schedules.find_one({"_id": made["_id"]})) <= _declared(ScheduleDoc)


def _declared(typed: Any) -> set[str]:
    return set(typed.__required_keys__ | typed.__optional_keys__)


def put_items(db, job_id: str, items: list[dict]) -> None:
    db.jobs.insert_one({"_id": job_id, "status": "completed"})
    stored.write(db, job_id, items)


def done(job_id: str, day: int) -> dict:
    return {"_id": job_id, "completed_at": datetime(2026, 1, day, tzinfo=UTC)}


def insert_run(db, run: dict, day: int) -> None:
    """A completed run of day `day`, stored and counted as the scheduler would."""
    moment = datetime(2026, 1, day, tzinfo=UTC)
    doc = {**run, "slot": str(day), "status": "completed", "completed_at": moment}
    db.schedule_runs.insert_one({**doc, "scheduled_for": moment, "created_at": moment})
    RunCounters(db).moved({**doc, "scheduled_for": moment}, None, "completed")


def test_changes_between_runs_are_counted_by_key_and_listed(db):
    ensure_indexes(db)
    run_of = {}
    for n in (1, 2, 3):
        run_of[n] = {"_id": f"run{n}", "schedule_id": "s1", "owner_id": "o", "job_id": f"job{n}"}
        insert_run(db, run_of[n], n)
    put_items(db, "job1", [{"sku": "a", "p": 1}, {"sku": "b", "p": 2}, {"sku": "c", "p": 3}])
    put_items(db, "job2", [{"sku": "a", "p": 1}, {"sku": "b", "p": 9}, {"sku": "d", "p": 4}])
    put_items(db, "job3", [{"sku": "d", "p": 4}, {"sku": "b", "p": 9}, {"sku": "a", "p": 1}])
    assert changes.detect(db, run_of[1], done("job1", 1), "sku") is None  # first: a baseline
    second = changes.detect(db, run_of[2], done("job2", 2), "sku")
    assert second == {"added": 1, "removed": 1, "changed": 1, "unchanged": 1}
    third = changes.detect(db, run_of[3], done("job3", 3), "sku")
    assert third == {"added": 0, "removed": 0, "changed": 0, "unchanged": 3}
    assert not changes.changed(third) and changes.changed(second)
    # a deleted job cannot be compared with: the next run compares with the one before it
    db.jobs.delete_one({"_id": "job3"})
    run_of[4] = {"_id": "run4", "schedule_id": "s1", "owner_id": "o", "job_id": "job4"}
    insert_run(db, run_of[4], 4)
    put_items(db, "job4", [{"sku": "a", "p": 1}])
    fourth = changes.detect(db, run_of[4], done("job4", 4), "sku")
    assert fourth == {"added": 0, "removed": 2, "changed": 0, "unchanged": 1}
    assert db.schedule_runs.find_one({"_id": "run4"})["compared_with"] == "run2"
    rows, total = changes.listing(db, "run2", None, 0, 10)
    assert total == 3
    listed = {(r["kind"], r["key"]): (r["before"], r["after"]) for r in rows}
    assert listed == {
        ("added", "d"): (None, {"sku": "d", "p": 4}),
        ("changed", "b"): ({"sku": "b", "p": 2}, {"sku": "b", "p": 9}),
        ("removed", "c"): ({"sku": "c", "p": 3}, None),
    }
