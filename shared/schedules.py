"""Scheduled jobs: cron slots in a time zone, exactly one run per slot, and the runs' history.

A schedule fires at the slots of its five-field cron expression in its IANA time zone.
cronsim follows Debian's cron across daylight-saving changes: a slot inside the hour that
spring-forward skips fires once, right after the jump; a slot inside the hour that fall-back
repeats fires once.

Exactly once: a run is the row `(schedule_id, slot)` of `schedule_runs`, under a unique index,
inserted together with the id its job will have. Whoever inserts it first starts the job; every
other scheduler (a second process, or this one again after a crash mid-tick) gets a duplicate
key and does nothing. A run whose job was never created (the process died in between) is
finished by the next tick under the same job id, so a slot can neither fire twice nor be lost.

The decisions (what is due, what was missed, what to skip) are pure functions of the schedule
and a clock (`plan`), tested with an injected clock; shared/scheduling.py carries them out.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pymongo import DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared import accounts, jobs
from shared.run_history import RunCounters, walk
from shared.windows import aware

logger = logging.getLogger(__name__)

STARTED, COMPLETED, FAILED, CANCELLED = "started", "completed", "failed", "cancelled"
SKIPPED, MISSED = "skipped", "missed"
RUN_STATUSES = (STARTED, COMPLETED, FAILED, CANCELLED, SKIPPED, MISSED)
OVERLAP_SKIP, OVERLAP_ALLOW = "skip", "allow"
CRON, MANUAL = "cron", "manual"
MISSED_ROWS_KEPT = 100  # after a long downtime, the newest missed slots get a history row
CATCH_UP_LIMIT = timedelta(days=7)  # older slots are not even counted


class ScheduleError(ValueError):
    """A cron expression or time zone that cannot be used; `field` names which."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (Europe/Berlin, UTC, …)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ScheduleError("timezone", f"Unknown time zone {name!r} (an IANA name).") from exc


def slots_after(cron: str, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """The slots of `cron` in `tz` strictly after `after`, as UTC datetimes."""
    for moment in CronSim(cron, after.astimezone(tz)):
        yield moment.astimezone(UTC)


def next_slot(cron: str, tz: ZoneInfo, after: datetime) -> datetime:
    return next(slots_after(cron, tz, after))


def check(cron: str, timezone: str, min_interval_seconds: float, now: datetime) -> None:
    """Raise ScheduleError unless `cron` in `timezone` is usable: five fields (no
    @daily-style aliases), a slot that comes, and no two of the next slots closer than
    `min_interval_seconds`."""
    tz = zone(timezone)
    if len(cron.split()) != 5:
        raise ScheduleError(
            "cron",
            "A cron expression has five fields: minute hour day-of-month month day-of-week "
            "(a seconds field is not supported; the shortest interval is one minute).",
        )
    try:
        upcoming = slots_after(cron, tz, now)
        first = next(upcoming)
        previous, gaps = first, []
        for moment in upcoming:
            gaps.append((moment - previous).total_seconds())
            previous = moment
            if len(gaps) >= 60:
                break
    except (CronSimError, StopIteration) as exc:
        raise ScheduleError("cron", f"Invalid cron expression {cron!r}: {exc}") from exc
    except (ValueError, OverflowError) as exc:  # a date that never comes (30 2 * 2 *…)
        raise ScheduleError("cron", f"Cron expression {cron!r} never fires: {exc}") from exc
    if gaps and min(gaps) < min_interval_seconds:
        raise ScheduleError(
            "cron",
            f"Runs would start every {min(gaps):g} s; the minimum interval is "
            f"{min_interval_seconds:g} s (SCHEDULE_MIN_INTERVAL_SECONDS).",
        )


def next_run(schedule: dict[str, Any], now: datetime) -> datetime | None:
    """When an enabled schedule fires next after `now`; None when it is disabled."""
    if not schedule.get("enabled", True):
        return None
    return next_slot(schedule["cron"], zone(schedule["timezone"]), now)


@dataclass
class Plan:
    """What a tick does for one schedule: runs to record (slot, status) and the next slot."""

    runs: list[tuple[datetime, str]] = field(default_factory=list)
    next_run: datetime | None = None
    missed_uncounted: bool = False  # slots older than CATCH_UP_LIMIT were not even listed


def plan(
    schedule: dict[str, Any], now: datetime, misfire_seconds: float, busy: bool
) -> Plan | None:
    """The tick of one schedule at `now`; None when nothing is due. Of the slots that came due
    since `next_run`, the latest fires when it is at most `misfire_seconds` old (or is
    `skipped` when `busy`: overlap "skip" with the previous job pending or running); the
    others are `missed`, the newest MISSED_ROWS_KEPT of them recorded. Never a burst."""
    due = aware(schedule.get("next_run"))
    if not schedule.get("enabled", True) or due is None or due > now:
        return None
    cron, tz = schedule["cron"], zone(schedule["timezone"])
    result = Plan()
    start = due
    if now - due > CATCH_UP_LIMIT:
        start, result.missed_uncounted = now - CATCH_UP_LIMIT, True
    recent: deque[datetime] = deque(maxlen=MISSED_ROWS_KEPT + 1)
    if start == due:
        recent.append(due)
    for moment in slots_after(cron, tz, start):
        if moment > now:
            result.next_run = moment
            break
        recent.append(moment)
    if not recent:  # caught up from the limit and no slot since then
        result.next_run = result.next_run or next_slot(cron, tz, now)
        return result
    latest = recent.pop()
    result.runs = [(moment, MISSED) for moment in recent]
    if (now - latest).total_seconds() > misfire_seconds:
        result.runs.append((latest, MISSED))
    elif busy and schedule.get("overlap", OVERLAP_SKIP) == OVERLAP_SKIP:
        result.runs.append((latest, SKIPPED))
    else:
        result.runs.append((latest, STARTED))
    return result


def missed_reason(moment: datetime, now: datetime, misfire_seconds: float) -> str:
    """Why `plan` marked the slot at `moment` `missed` at `now`: too late to fire, or within
    the window but passed over because a later slot was due too (only the latest fires)."""
    if (now - moment).total_seconds() > misfire_seconds:
        return (
            "the scheduler was not running at this time "
            f"(misfire window of {misfire_seconds:g} s passed)"
        )
    return (
        "the scheduler was not running at this time; a later slot was due by the time it "
        "ran, and only the latest slot runs (no burst)"
    )


def slot_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ScheduleRepository:
    """Schedules and their runs (`schedule_runs`: the history)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.schedules = db.schedules
        self.runs = db.schedule_runs
        self.counts = RunCounters(db)

    # -- schedules -------------------------------------------------------------------------
    def create(self, owner_id: str, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        doc = {
            "_id": uuid.uuid4().hex,
            "owner_id": owner_id,
            "name": body["name"],
            "cron": body["cron"],
            "timezone": body.get("timezone") or "UTC",
            "enabled": body.get("enabled", True),
            "overlap": body.get("overlap") or OVERLAP_SKIP,
            "key": body.get("key"),
            "job": body["job"],
            "last_run": None,
            "created_at": now,
            "updated_at": now,
        }
        doc["next_run"] = next_run(doc, now)
        self.schedules.insert_one(doc)
        return doc

    def get(self, schedule_id: str, owner_id: str | None = None) -> dict[str, Any] | None:
        query: dict[str, Any] = {"_id": schedule_id}
        if owner_id is not None:
            query["owner_id"] = owner_id
        return self.schedules.find_one(query)

    def of_owner(self, owner_id: str | None) -> list[dict[str, Any]]:
        query = {} if owner_id is None else {"owner_id": owner_id}
        return list(self.schedules.find(query).sort("created_at", DESCENDING))

    def count(self, owner_id: str) -> int:
        return self.schedules.count_documents({"owner_id": owner_id})

    def update(
        self, schedule: dict[str, Any], changes: dict[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        merged = {**schedule, **changes}
        fields = {**changes, "updated_at": now}
        if {"cron", "timezone", "enabled"} & changes.keys():
            # slots while disabled are not misfires: an enabled schedule starts from now
            fields["next_run"] = next_run(merged, now)
        return self.schedules.find_one_and_update(
            {"_id": schedule["_id"]}, {"$set": fields}, return_document=ReturnDocument.AFTER
        )

    def delete(self, schedule_id: str) -> None:
        """The schedule goes; its runs (the history) and their jobs stay."""
        self.schedules.delete_one({"_id": schedule_id})

    def due(self, now: datetime) -> list[dict[str, Any]]:
        return list(self.schedules.find({"enabled": True, "next_run": {"$lte": now}}))

    def advance(self, schedule: dict[str, Any], upcoming: datetime | None) -> None:
        """Move next_run on, unless someone else (a PATCH, another scheduler) already did."""
        self.schedules.update_one(
            {"_id": schedule["_id"], "next_run": schedule["next_run"]},
            {"$set": {"next_run": upcoming}},
        )

    def suspend(self, schedule: dict[str, Any]) -> None:
        """Its owner is deactivated: no next run until the owner is active again (unless a
        PATCH or another scheduler moved it meanwhile)."""
        self.schedules.update_one(
            {"_id": schedule["_id"], "next_run": schedule["next_run"]},
            {"$set": {"next_run": None, "suspended": accounts.SUSPENDED}},
        )

    def resume_owner(self, owner_id: str, now: datetime) -> int:
        """The owner is active again: its suspended schedules fire from the next slot after
        `now` (the slots in between are not misfires). How many resumed."""
        resumed = 0
        for schedule in self.schedules.find({"owner_id": owner_id, "suspended": {"$ne": None}}):
            moved = self.schedules.update_one(
                {"_id": schedule["_id"], "suspended": schedule["suspended"]},
                {"$set": {"next_run": next_run(schedule, now), "suspended": None}},
            )
            resumed += moved.modified_count
        return resumed

    def busy(self, schedule_id: str) -> bool:
        """Whether a job of the schedule is still pending or running."""
        return (
            self.db.jobs.find_one(
                {"schedule_id": schedule_id, "status": {"$in": [jobs.PENDING, jobs.RUNNING]}},
                {"_id": 1},
            )
            is not None
        )

    # -- runs ------------------------------------------------------------------------------
    def record(
        self,
        schedule: dict[str, Any],
        scheduled_for: datetime,
        trigger: str,
        status: str,
        now: datetime,
        error: str | None = None,
    ) -> dict[str, Any] | None:
        """Insert the run of one slot; None when that slot already has one (exactly once)."""
        slot = slot_key(scheduled_for) if trigger == CRON else f"manual:{uuid.uuid4().hex}"
        run = {
            "_id": uuid.uuid4().hex,
            "schedule_id": schedule["_id"],
            "owner_id": schedule["owner_id"],
            "schedule_name": schedule.get("name"),
            "slot": slot,
            "scheduled_for": scheduled_for,
            "trigger": trigger,
            "status": status,
            "job_id": jobs.new_id() if status == STARTED else None,
            "job_created": False,
            "started_at": now if status == STARTED else None,
            "completed_at": None if status == STARTED else now,
            "items_scraped": 0,
            "error": error,
            "changes": None,
            "settling_until": None,
            "created_at": now,
        }
        try:
            self.runs.insert_one(run)
        except DuplicateKeyError:
            return None
        self.counts.moved(run, None, status)
        return run

    def history(
        self,
        owner_id: str | None,
        schedule_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        skip: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of runs, newest slot first, and how many match (from the counts)."""
        docs = self.counts.of(owner_id, schedule_id)
        total = self.counts.total(docs, status)
        if skip >= total:
            return [], total
        base: dict[str, Any] = {} if owner_id is None else {"owner_id": owner_id}
        if schedule_id:
            base = {"schedule_id": schedule_id}  # its own index; the owner is checked below
        runs = self.newest(base, lambda r: _matches(r, owner_id, status), docs)
        return list(itertools.islice(runs, skip, skip + limit)), total  # skipped ones not kept

    def newest(
        self,
        base: dict[str, Any],
        keep: Callable[[dict[str, Any]], bool],
        docs: list[dict[str, Any]] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Runs matching `base` and `keep`, newest slot first."""
        if docs is None:
            docs = self.counts.of(base.get("owner_id"), base.get("schedule_id"))
        return walk(self.db, base, keep, self.counts.span(docs), self.counts.total(docs))

    def run(self, run_id: str, owner_id: str | None = None) -> dict[str, Any] | None:
        query: dict[str, Any] = {"_id": run_id}
        if owner_id is not None:
            query["owner_id"] = owner_id
        return self.runs.find_one(query)

    def reopen(self, job_id: str) -> None:
        """The job of a run was retried or reset: its history row follows it again."""
        run = self.runs.find_one({"job_id": job_id})
        if run is None or run["status"] == STARTED:
            return
        moved = self.runs.update_one(
            {"_id": run["_id"], "status": run["status"]},
            {"$set": {"status": STARTED, "completed_at": None, "error": None, "changes": None}},
        )
        if moved.modified_count:
            self.counts.moved(run, run["status"], STARTED)

    def finish(self, run: dict[str, Any], fields: dict[str, Any]) -> None:
        """A started run ends (`fields` carry its new status and outcome)."""
        moved = self.runs.update_one({"_id": run["_id"], "status": STARTED}, {"$set": fields})
        if moved.modified_count:
            self.counts.moved(run, STARTED, fields["status"])


def _matches(run: dict[str, Any], owner_id: str | None, status: str | None) -> bool:
    return (owner_id is None or run.get("owner_id") == owner_id) and (
        not status or run.get("status") == status
    )
