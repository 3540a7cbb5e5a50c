"""Schedules' history read in windows and counted by counters: the same pages and totals as a
sort and a count over every run, under status changes, a recount and a migration."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from shared import changes
from shared.db import ensure_indexes
from shared.run_history import COUNTERS, RunCounters, migrate
from shared.schedules import (
    CANCELLED,
    COMPLETED,
    CRON,
    FAILED,
    MANUAL,
    MISSED,
    SKIPPED,
    STARTED,
    ScheduleRepository,
)

pytestmark = pytest.mark.integration
JOB = {"url": "http://127.0.0.1:9/", "selectors": {"title": "h1::text"}}
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def make_history(db) -> tuple[ScheduleRepository, list[dict]]:
    """Two owners, three schedules, 420 runs over 40 days: dense minutes, sparse days, gaps."""
    ensure_indexes(db)
    repo = ScheduleRepository(db)
    body = {"name": "s", "cron": "* * * * *", "timezone": "UTC", "job": JOB}
    schedules = [repo.create(owner, body, T0) for owner in ("alice", "alice", "bob")]
    rng = random.Random(7)
    moments = [T0 + timedelta(minutes=m) for m in range(300)]  # a dense burst
    moments += [T0 + timedelta(days=d, hours=rng.randrange(24)) for d in range(2, 40)]
    moments += [T0 + timedelta(days=39, minutes=m) for m in range(82)]  # and another
    for i, moment in enumerate(moments):
        schedule = schedules[i % 3]
        status = (STARTED, SKIPPED, MISSED)[i % 7 % 3]
        run = repo.record(schedule, moment, CRON if i % 5 else MANUAL, status, moment)
        assert run is not None
        if status == STARTED and i % 4:
            repo.finish(
                run, {"status": (COMPLETED, FAILED, CANCELLED)[i % 3], "completed_at": moment}
            )
    for run in list(db.schedule_runs.find({"status": FAILED}).limit(10)):
        repo.reopen(run["job_id"])  # a retried job: its run is started again
    return repo, schedules


def expected(db, query: dict) -> list[str]:
    runs = list(db.schedule_runs.find(query))
    runs.sort(key=lambda r: (r["scheduled_for"], r["created_at"], r["_id"]), reverse=True)
    return [r["_id"] for r in runs]


def test_pages_and_totals_match_a_sort_and_count_of_every_run(db):
    repo, schedules = make_history(db)
    cases = [
        ("alice", None, None),
        ("alice", schedules[1]["_id"], None),
        ("alice", None, FAILED),
        ("bob", schedules[2]["_id"], COMPLETED),
        (None, None, STARTED),  # an admin: every owner
        ("bob", schedules[0]["_id"], None),  # someone else's schedule: nothing
    ]
    for owner, schedule_id, status in cases:
        query = {k: v for k, v in (("owner_id", owner), ("schedule_id", schedule_id)) if v}
        if status:
            query["status"] = status
        want = expected(db, query)
        for skip, limit in ((0, 50), (0, 1), (37, 20), (len(want) - 3, 50), (len(want) + 5, 10)):
            rows, total = repo.history(owner, schedule_id, status, limit, max(skip, 0))
            assert total == len(want), (owner, schedule_id, status)
            assert [r["_id"] for r in rows] == want[max(skip, 0) : max(skip, 0) + limit]


def test_a_recount_corrects_counts_a_dead_process_left_behind_and_a_store_migrates(db):
    repo, schedules = make_history(db)
    schedule_id = schedules[0]["_id"]
    truth = repo.history("alice", schedule_id, None, 1, 0)[1]
    # a process died between a run's update and its count
    db[COUNTERS].update_one({"_id": schedule_id}, {"$inc": {f"n.{COMPLETED}": 1}})
    assert repo.history("alice", schedule_id, None, 1, 0)[1] == truth + 1
    assert RunCounters(db).repair(settle_seconds=0) == [schedule_id]
    assert repo.history("alice", schedule_id, None, 1, 0)[1] == truth
    assert RunCounters(db).repair(settle_seconds=0) == []
    # a store whose runs predate the counts gets them at start-up
    db.drop_collection(COUNTERS)
    migrate(db)
    assert repo.history("alice", schedule_id, None, 1, 0)[1] == truth
    assert [r["_id"] for r in repo.history(None, None, None, 500, 0)[0]] == expected(db, {})


def test_change_detection_compares_with_the_latest_completed_run_that_still_has_its_job(db):
    repo, schedules = make_history(db)
    schedule = schedules[0]
    completed = expected(db, {"schedule_id": schedule["_id"], "status": COMPLETED})
    for run_id in completed[:3]:
        run = db.schedule_runs.find_one({"_id": run_id})
        db.jobs.insert_one({"_id": run["job_id"], "status": "completed"})
    db.jobs.delete_one({"_id": db.schedule_runs.find_one({"_id": completed[0]})["job_id"]})
    newest = db.schedule_runs.find_one({"_id": completed[0]})
    later = newest["completed_at"].replace(tzinfo=UTC) + timedelta(days=1)
    found = changes.previous_completed(db, {"_id": "new", **newest}, later)
    assert found is not None and found["_id"] == completed[1]
