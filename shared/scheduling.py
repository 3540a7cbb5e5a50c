"""Carrying out schedules: fire due slots, start runs' jobs, recover, settle ended runs.

shared/schedules.py decides (pure functions of a schedule and a clock) and stores; this module
acts on those decisions for one scheduler process. Any number of them may run at once: a run
is claimed by inserting it (unique per slot) and settled under a lease, so none is done twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared import accounts, jobs
from shared.jobs import JobRepository
from shared.schedules import (
    CANCELLED,
    CRON,
    MANUAL,
    MISSED,
    OVERLAP_ALLOW,
    SKIPPED,
    STARTED,
    ScheduleRepository,
    aware,
    missed_reason,
    plan,
)

logger = logging.getLogger(__name__)

UNSTARTED_GRACE = timedelta(seconds=30)  # a run without its job this long: its creator died
SETTLE_LEASE = timedelta(minutes=10)  # one scheduler settles a run; another after this

Enqueue = Callable[[dict[str, Any]], None]


class Scheduler:
    """Carries out plans: records runs, creates their jobs, settles finished ones.

    `enqueue` sends a job's scrape task (a lost send is re-sent by the reconciler, as for any
    pending job); `on_settled(run, job)` runs after a run's job ended (change detection)."""

    def __init__(
        self,
        db: Database,
        enqueue: Enqueue,
        misfire_seconds: float = 300,
        on_settled: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None] | None = None,
        clock: Callable[[], datetime] = jobs.now,
    ) -> None:
        self.repo = ScheduleRepository(db)
        self.db = db
        self.enqueue = enqueue
        self.misfire_seconds = misfire_seconds
        self.on_settled = on_settled
        self.clock = clock

    def tick(self) -> dict[str, int]:
        """Fire what is due now; finish runs whose job was never created."""
        counts = {STARTED: 0, SKIPPED: 0, MISSED: 0, "recovered": 0}
        now = self.clock()
        for schedule in self.repo.due(now):
            try:
                for status in self.fire(schedule, now):
                    counts[status] += 1
            except Exception:  # one broken schedule must not stop the others
                logger.exception("schedule %s: tick failed", schedule["_id"])
        counts["recovered"] = self.recover(now)
        return counts

    def fire(self, schedule: dict[str, Any], now: datetime) -> list[str]:
        busy = schedule.get("overlap") != OVERLAP_ALLOW and self.repo.busy(schedule["_id"])
        decided = plan(schedule, now, self.misfire_seconds, busy)
        if decided is None:
            return []
        # a deactivated owner's schedule skips this slot, then waits for the owner's return
        inactive = accounts.is_deactivated(self.db, schedule.get("owner_id"))
        done = []
        for moment, planned in decided.runs:
            status = SKIPPED if inactive and planned in (STARTED, SKIPPED) else planned
            error = {
                MISSED: missed_reason(moment, now, self.misfire_seconds),
                SKIPPED: accounts.DEACTIVATED
                if inactive
                else "the previous job of this schedule was still running (overlap: skip)",
            }.get(status)
            run = self.repo.record(schedule, moment, CRON, status, now, error)
            if run is None:  # another scheduler recorded this slot first
                logger.info("schedule %s: slot %s already taken", schedule["_id"], moment)
                continue
            if status == STARTED:
                self.start(schedule, run)
            done.append(status)
        if decided.missed_uncounted:
            logger.warning("schedule %s: slots older than 7 days were not run", schedule["_id"])
        if inactive:
            logger.info("schedule %s: skipped, %s", schedule["_id"], accounts.DEACTIVATED)
            self.repo.suspend(schedule)
        else:
            self.repo.advance(schedule, decided.next_run)
        return done

    def run_now(self, schedule: dict[str, Any]) -> dict[str, Any]:
        """A manual run (POST /schedules/{id}/run): starts at once, whatever the overlap."""
        now = self.clock()
        run = self.repo.record(schedule, now, MANUAL, STARTED, now)
        assert run is not None  # a manual slot is unique
        self.start(schedule, run)
        return run

    def start(self, schedule: dict[str, Any], run: dict[str, Any]) -> None:
        """Create the run's job under the id the run holds (a second try is a no-op)."""
        repo = JobRepository(self.db)
        job: dict[str, Any] | None
        try:
            job = repo.create(
                schedule["owner_id"],
                schedule["job"],
                job_id=run["job_id"],
                schedule_id=run["schedule_id"],
                schedule_run_id=run["_id"],
            )
        except DuplicateKeyError:
            job = repo.get(run["job_id"])
        self.repo.runs.update_one({"_id": run["_id"]}, {"$set": {"job_created": True}})
        self.repo.schedules.update_one(
            {"_id": run["schedule_id"]}, {"$max": {"last_run": run["scheduled_for"]}}
        )
        if job is not None and job["status"] == jobs.PENDING:
            try:
                self.enqueue(job)
            except Exception:  # Redis down: the reconciler re-sends unsent jobs
                logger.warning("scheduled job %s saved but not enqueued", job["_id"])
                jobs.mark_unsent(self.db, job["_id"])

    def recover(self, now: datetime) -> int:
        """Runs whose creator died between recording the run and creating its job."""
        recovered = 0
        stale = now - UNSTARTED_GRACE
        for run in self.repo.runs.find(
            {"status": STARTED, "job_created": False, "created_at": {"$lt": stale}}
        ):
            schedule = self.repo.get(run["schedule_id"])
            if schedule is None:
                self._finish(run, CANCELLED, now, error="schedule deleted before its job started")
                continue
            self.start(schedule, run)
            recovered += 1
        return recovered

    # -- settling --------------------------------------------------------------------------
    def settle(self, limit: int = 100) -> int:
        """Copy the outcome of ended jobs onto their runs (and compare items, `on_settled`)."""
        now = self.clock()
        open_runs = list(self.repo.runs.find({"status": STARTED, "job_created": True}).limit(limit))
        if not open_runs:
            return 0
        found = {
            job["_id"]: job
            for job in self.db.jobs.find({"_id": {"$in": [r["job_id"] for r in open_runs]}})
        }
        settled = 0
        for run in open_runs:
            job = found.get(run["job_id"])
            if job is not None and job["status"] not in jobs.TERMINAL:
                continue
            if job is None and now - (aware(run["created_at"]) or now) < UNSTARTED_GRACE:
                continue  # just created: a lagging read is not a deleted job
            # a lease, taken with update_one on a filter without top-level operators: the
            # embedded store scans the collection for findAndModify and for `$or` filters
            lease = {"settling_until": now + SETTLE_LEASE}
            taken = self.repo.runs.update_one(
                {"_id": run["_id"], "status": STARTED, "settling_until": {"$not": {"$gte": now}}},
                {"$set": lease},
            )
            if not taken.matched_count:
                continue  # another scheduler is on it
            claimed = {**run, **lease}
            try:
                if job is None:
                    self._finish(claimed, CANCELLED, now, error="job deleted")
                else:
                    changes = None
                    if job["status"] == jobs.COMPLETED and self.on_settled is not None:
                        changes = self.on_settled(claimed, job)
                    self._finish(claimed, job["status"], now, job=job, changes=changes)
                settled += 1
            except Exception:
                logger.exception("run %s: settling failed; retried after the lease", run["_id"])
        return settled

    def _finish(
        self,
        run: dict[str, Any],
        status: str,
        now: datetime,
        job: dict[str, Any] | None = None,
        error: Any = None,
        changes: dict[str, Any] | None = None,
    ) -> None:
        fields: dict[str, Any] = {
            "status": status,
            "completed_at": (job or {}).get("completed_at") or now,
            "settling_until": None,
            "changes": changes,
        }
        if job is not None:
            fields["items_scraped"] = job.get("items_scraped", 0)
            fields["error"] = (job.get("error") or {}).get("message") if job.get("error") else None
        else:
            fields["error"] = error
        self.repo.finish(run, fields)
