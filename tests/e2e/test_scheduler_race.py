"""Exactly once per slot: two scheduler processes (one killed hard and restarted midway) over a
`* * * * *` schedule for three minutes or more start exactly one job per minute
(testing/scheduler_race.py). Under `make test` this file is handed out first (tests/conftest.py),
so the other worker runs the rest of the suite while this one waits on the clock."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from shared import jobs
from shared.schedules import STARTED, next_slot, zone
from testing.scheduler_race import SchedulerRace

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def scheduler_race(redis_url, mongo_url, tmp_path_factory):
    """Two scheduler processes racing over one schedule, for this module only."""
    race = SchedulerRace(redis_url, mongo_url, tmp_path_factory.mktemp("race"))
    race.start()
    try:
        yield race
    finally:
        race.stop()


def test_two_schedulers_racing_for_three_minutes_start_exactly_one_job_per_minute(
    scheduler_race,
):
    race = scheduler_race
    assert race.began is not None
    first = next_slot("* * * * *", zone("UTC"), race.began)
    race.wait_until(first + timedelta(minutes=3, seconds=3))
    race.restarted.wait(timeout=60)
    end = jobs.now() - timedelta(seconds=3)  # slots up to here have had time to fire
    database = race.stack.database()
    slots = []
    moment = first
    while moment <= end:
        slots.append(moment)
        moment += timedelta(minutes=1)
    assert len(slots) >= 3
    runs = list(
        database.schedule_runs.find(
            {"schedule_id": race.schedule["_id"], "scheduled_for": {"$lte": end}}
        ).sort("scheduled_for", 1)
    )
    fired = [(r["scheduled_for"].replace(tzinfo=UTC), r["status"]) for r in runs]
    assert fired == [(s, STARTED) for s in slots]
    made = list(database.jobs.find({"schedule_id": race.schedule["_id"]}))
    per_run: dict[str, int] = {}
    for job in made:
        per_run[job["schedule_run_id"]] = per_run.get(job["schedule_run_id"], 0) + 1
    assert all(per_run.get(r["_id"]) == 1 for r in runs), per_run
    assert set(per_run) <= {r["_id"] for r in database.schedule_runs.find()}
    # both raced throughout: b never stopped, a was killed hard and came back
    assert race.readies("scheduler-b") == 1 and race.readies("scheduler-a") == 2
