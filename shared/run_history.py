"""Schedules' run history at a cost that does not grow with it.

A schedule that fires every minute writes 1,440 runs a day. The embedded store sorts every
document a query matches and counts by reading them, so a history page sorted over all runs
(and its total counted) took 850 ms at 20,000 runs. Instead:

- **Counts** per schedule and status live in `schedule_run_counters` (one document per
  schedule, with the owner): a run's insert adds one, and each status change, made by an
  update pinned on the status it read, moves one count from the old status to the new.
  Totals read them. Beat recounts (`repair`) and corrects a count that a process killed
  between its two writes left off by one.
- **Pages** are read in windows of `scheduled_for`, newest first, through the indexes
  (owner_id, scheduled_for) and (schedule_id, scheduled_for): each query matches one window,
  the next reaches further back, sized by the density seen so far.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.windows import aware, newest_first

if TYPE_CHECKING:  # shared/schedules.py imports this module
    from shared.schedules import ScheduleRunDoc

COUNTERS = "schedule_run_counters"
MIN_WINDOW = timedelta(minutes=1)


class RunCounters:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.coll = db[COUNTERS]

    def moved(
        self,
        run: ScheduleRunDoc,
        old: str | None,
        new: str | None,
    ) -> None:
        """Count the change of one run from status `old` (None: a new run) to `new`."""
        if old == new:
            return
        inc: dict[str, int] = {"v": 1}
        if old is not None:
            inc[f"n.{old}"] = -1
        if new is not None:
            inc[f"n.{new}"] = 1
        update: dict[str, Any] = {"$inc": inc, "$setOnInsert": {"owner_id": run["owner_id"]}}
        if run.get("scheduled_for") is not None:
            update["$min"] = {"first": run["scheduled_for"]}
            update["$max"] = {"last": run["scheduled_for"]}
        try:
            self.coll.update_one({"_id": run["schedule_id"]}, update, upsert=True)
        except DuplicateKeyError:  # two first runs raced to create the document
            self.coll.update_one({"_id": run["schedule_id"]}, update)

    def of(self, owner_id: str | None, schedule_id: str | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {} if owner_id is None else {"owner_id": owner_id}
        if schedule_id:
            query["_id"] = schedule_id
        return list(self.coll.find(query))

    @staticmethod
    def total(docs: list[dict[str, Any]], status: str | None = None) -> int:
        counts = [doc.get("n") or {} for doc in docs]
        if status:
            return sum(int(c.get(status) or 0) for c in counts)
        return sum(int(v or 0) for c in counts for v in c.values())

    @staticmethod
    def span(docs: list[dict[str, Any]]) -> tuple[datetime, datetime] | None:
        """(oldest, newest) `scheduled_for` of the runs counted in `docs`."""
        firsts = [aware(doc["first"]) for doc in docs if doc.get("first")]
        lasts = [aware(doc["last"]) for doc in docs if doc.get("last")]
        if not firsts or not lasts:
            return None
        return min(firsts), max(lasts)

    # -- upkeep ---------------------------------------------------------------------------
    def recount(self) -> dict[str, dict[str, Any]]:
        """The counts read from the runs themselves (a scan: beat's job, not a request's)."""
        counted: dict[str, dict[str, Any]] = {}
        rows = self.db.schedule_runs.aggregate(
            [
                {
                    "$group": {
                        "_id": {"s": "$schedule_id", "st": "$status"},
                        "owner": {"$first": "$owner_id"},
                        "n": {"$sum": 1},
                        "first": {"$min": "$scheduled_for"},
                        "last": {"$max": "$scheduled_for"},
                    }
                }
            ]
        )
        for row in rows:
            doc = counted.setdefault(
                row["_id"]["s"],
                {"owner_id": row["owner"], "n": {}, "first": row["first"], "last": row["last"]},
            )
            doc["n"][row["_id"]["st"]] = row["n"]
            doc["first"] = min((d for d in (doc["first"], row["first"]) if d), default=None)
            doc["last"] = max((d for d in (doc["last"], row["last"]) if d), default=None)
        return counted

    def repair(self, settle_seconds: float = 1.0) -> list[str]:
        """Store the recounts that differ, for the schedules whose counts no run moved from
        before the recount until `settle_seconds` after it. The schedules corrected."""
        stored = {str(doc["_id"]): doc for doc in self.coll.find({})}
        counted = self.recount()

        def same(schedule_id: str) -> bool:
            a = (stored.get(schedule_id) or {}).get("n") or {}
            b = (counted.get(schedule_id) or {}).get("n") or {}
            return all(int(a.get(k) or 0) == int(b.get(k) or 0) for k in set(a) | set(b))

        differing = sorted(s for s in set(stored) | set(counted) if not same(s))
        if not differing:
            return []
        time.sleep(settle_seconds)
        corrected = []
        for schedule_id in differing:
            fresh = counted.get(schedule_id) or {"n": {}}
            fields = {"n": fresh["n"]}
            fields.update({k: fresh[k] for k in ("first", "last") if fresh.get(k)})
            if fresh.get("owner_id"):
                fields["owner_id"] = fresh["owner_id"]
            before = stored.get(schedule_id)
            try:
                result = self.coll.update_one(
                    {"_id": schedule_id, "v": before.get("v") if before else {"$exists": False}},
                    {"$set": fields, "$inc": {"v": 1}},
                    upsert=before is None,
                )
            except DuplicateKeyError:
                continue  # a run made the document meanwhile: next time
            if result.modified_count or result.upserted_id:
                corrected.append(schedule_id)
        return corrected


def migrate(db: Database) -> None:
    """Counts for a store whose runs predate them (once: when there are runs but no counts)."""
    coll = db[COUNTERS]
    if (
        coll.find_one({}, {"_id": 1}) is not None
        or db.schedule_runs.find_one({}, {"_id": 1}) is None
    ):
        return
    for schedule_id, doc in RunCounters(db).recount().items():
        with contextlib.suppress(DuplicateKeyError):  # another process is migrating too
            coll.insert_one({"_id": schedule_id, **doc, "v": 0})


def walk(
    db: Database,
    base: dict[str, Any],
    keep: Callable[[ScheduleRunDoc], bool],
    span: tuple[datetime, datetime] | None,
    total: int,
) -> Iterator[ScheduleRunDoc]:
    """Runs matching `base` (owner_id or schedule_id) and `keep`, newest `scheduled_for`
    first, over `span` (oldest, newest: RunCounters.span), a window of the index at a time."""
    if span is None:
        return iter(())
    floor, newest = span
    # about 64 runs in the first window at the history's average density, then wider
    window = max(MIN_WINDOW, (newest - floor) * (64 / max(total, 1)))
    return newest_first(
        db.schedule_runs,
        base,
        "scheduled_for",
        newest,
        floor,
        window,
        keep,
        tiebreak=("created_at", "_id"),
    )
