"""Usage metering per user and day, and the quotas that read it (issue 25).

One document per (user, UTC day) in `usage`: `{_id: "<owner>|<YYYY-MM-DD>", owner_id, day,
jobs, pages, items, browser_seconds}`, moved by `$inc` as work happens, never by scans.

Exactly once: the figures are metered where the job counters are (shared/counters.py), by the
job's state transitions (shared/jobs.py `transition`, `store_counters`). Each transition is a
conditional write pinned on the job as read, so exactly one process applies it; `meter` turns
the transition into a delta, which goes into the same write as `$inc` on the job's own `usage`
(so every job carries what it was metered, and the sum over a user's jobs is the user's total)
and then onto the user's day. What counts how:

- `jobs`: one per job created (`POST /jobs`, a schedule's run, Scrapyd's schedule.json).
- `pages`: once per fetch, per run: a run's pages are metered when the run ends (completed,
  failed, cancelled, handed back, requeued or taken over after its worker died), as the run
  recorded them (its final counters, or its last progress write when its worker died). A
  retried or taken-over job meters the pages its new run fetches again: they were fetched
  again. Pages a dying worker fetched after its last progress write (at most
  PROGRESS_INTERVAL_SECONDS of work) are not metered.
- `browser_seconds`: the time the run's browser tabs were open, metered like pages.
- `items`: once per stored item: the job's stored items beyond what was metered for it before
  (a retry keeps and de-duplicates earlier items, so they are not metered twice; a reset
  purges them, so the re-run's items are metered again).

A process that dies between a job's write and the day's `$inc` leaves that one transition
unmetered on the day (the job's own `usage` has it).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo.database import Database

FIELDS = ("jobs", "pages", "items", "browser_seconds")
QUOTAS = ("concurrent_jobs", "pages_per_month", "browser_minutes_per_month", "storage_bytes")
ITEMS_METERED = "usage_items"  # a job's stored items already metered (this epoch)
RUNNING = "running"


def day_of(moment: datetime) -> str:
    """The UTC day of `moment` (naive: already UTC, as MongoDB gives it back)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d")


def month_of(moment: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month holding `moment`: (its first instant, the next month's)."""
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    days = calendar.monthrange(moment.year, moment.month)[1]
    return start, start + timedelta(days=days)


def meter(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, float]:
    """The usage one transition of a job adds (pure; see the module's text)."""
    was, now_running = before.get("status") == RUNNING, after.get("status") == RUNNING
    delta: dict[str, float] = {}
    for field, key in (("pages_crawled", "pages"), ("browser_seconds", "browser_seconds")):
        if was and not now_running:  # a run ended: what it recorded
            delta[key] = after.get(field) or 0
        elif was and now_running and before.get("run_id") != after.get("run_id"):
            delta[key] = before.get(field) or 0  # taken over: what the dead run recorded
        elif not was and not now_running and before.get("status") == after.get("status"):
            # a cancelled run's final counters (store_counters): beyond what the cancel metered
            delta[key] = max(0, (after.get(field) or 0) - (before.get(field) or 0))
    if not now_running and int(after.get("epoch") or 0) == int(before.get("epoch") or 0):
        stored = int(after.get("items_scraped") or 0)
        delta["items"] = max(0, stored - int(before.get(ITEMS_METERED) or 0))
    return {key: value for key, value in delta.items() if value}


def job_update(before: Mapping[str, Any], after: Mapping[str, Any], delta: dict[str, float]):
    """What the transition's own write adds to the job: `$inc` of its `usage.*`, and `$set`
    of the items metered so far (0 again when a reset starts a new epoch)."""
    inc = {f"usage.{key}": value for key, value in delta.items()}
    sets: dict[str, Any] = {}
    if int(after.get("epoch") or 0) != int(before.get("epoch") or 0):
        sets[ITEMS_METERED] = 0
    elif "items" in delta:
        sets[ITEMS_METERED] = int(after.get("items_scraped") or 0)
    return inc, sets


@dataclass(frozen=True)
class Quotas:
    """A user's quotas; None: unlimited."""

    concurrent_jobs: int | None = None
    pages_per_month: int | None = None
    browser_minutes_per_month: int | None = None
    storage_bytes: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in QUOTAS}


def quotas_of(user: Mapping[str, Any] | None, settings: Any) -> Quotas:
    """The user's own quotas (PATCH /admin/users/{id}) over the QUOTA_* defaults; a quota of
    0 is unlimited."""
    own = (user or {}).get("quotas") or {}
    values: dict[str, int | None] = {}
    for name in QUOTAS:
        value = own[name] if name in own else getattr(settings, f"quota_{name}", 0)
        values[name] = int(value) if value else None
    return Quotas(**values)


class UsageStore:
    """The `usage` collection: moves and reads."""

    def __init__(self, db: Database):
        self.db = db
        self.coll = db.usage

    def add(self, owner_id: Any, moment: datetime, delta: Mapping[str, float]) -> None:
        inc = {key: value for key, value in delta.items() if value}
        if not inc or owner_id is None:
            return
        day = day_of(moment)
        self.coll.update_one(
            {"_id": f"{owner_id}|{day}"},
            {"$inc": inc, "$setOnInsert": {"owner_id": str(owner_id), "day": day}},
            upsert=True,
        )

    def totals(
        self, owner_id: str | None, date_from: date, date_to: date, group_by: str | None = None
    ) -> dict[str, dict[str, float]]:
        """Sums over the days from `date_from` to `date_to` (inclusive): grouped by `user` or
        `day`, or one total (key "")."""
        days = {"$gte": date_from.isoformat(), "$lte": date_to.isoformat()}
        query: dict[str, Any] = {"day": days}
        if owner_id is not None:
            query["owner_id"] = owner_id
        grouped: dict[str, dict[str, float]] = {}
        for doc in self.coll.find(query):
            key = {"user": doc.get("owner_id"), "day": doc.get("day")}.get(group_by or "", "")
            row = grouped.setdefault(str(key), dict.fromkeys(FIELDS, 0))
            for field in FIELDS:
                row[field] += doc.get(field) or 0
        return grouped

    def month(self, owner_id: str, moment: datetime) -> dict[str, float]:
        start, end = month_of(moment)
        found = self.totals(owner_id, start.date(), (end - timedelta(days=1)).date())
        return found.get("", dict.fromkeys(FIELDS, 0))

    def month_by_user(self, moment: datetime) -> dict[str, dict[str, float]]:
        start, end = month_of(moment)
        return self.totals(None, start.date(), (end - timedelta(days=1)).date(), "user")


def bytes_stored(db: Database, owner_id: str) -> dict[str, int]:
    """What the user stores now (the storage quota): files (screenshots, PDFs: their number
    and bytes) and eggs (bytes). Items are limited by MAX_STORED_ITEMS_PER_USER instead."""
    from shared.eggs import EggStore
    from shared.files import JobFiles

    files = JobFiles(db).usage_for_owner(owner_id)
    eggs = EggStore(db).bytes_for_owner(owner_id)
    return {
        "files": files["count"],
        "files_bytes": files["bytes"],
        "eggs_bytes": eggs,
        "total": files["bytes"] + eggs,
    }


def running_jobs(db: Database, owner_id: str) -> int:
    return int(db.jobs.count_documents({"owner_id": owner_id, "status": RUNNING}))


@dataclass(frozen=True)
class Exceeded:
    """A quota the user is at or over: `quota` its name, `limit`, `used`, `resets_at`."""

    quota: str
    limit: int
    used: float
    resets_at: datetime | None

    def detail(self) -> str:
        when = f"; it resets at {self.resets_at.isoformat()}" if self.resets_at else ""
        return f"Quota {self.quota} reached: {self.used:g} of {self.limit}{when}"


def exceeded(db: Database, owner_id: str, quotas: Quotas, moment: datetime) -> Exceeded | None:
    """The first monthly or storage quota the user has used up (at or over), if any."""
    _, resets = month_of(moment)
    used = None
    if quotas.pages_per_month is not None or quotas.browser_minutes_per_month is not None:
        used = UsageStore(db).month(owner_id, moment)
    pages = quotas.pages_per_month
    if pages is not None and used is not None and used["pages"] >= pages:
        return Exceeded("pages_per_month", pages, used["pages"], resets)
    if quotas.browser_minutes_per_month is not None and used is not None:
        minutes = used["browser_seconds"] / 60
        if minutes >= quotas.browser_minutes_per_month:
            limit = quotas.browser_minutes_per_month
            return Exceeded("browser_minutes_per_month", limit, round(minutes, 3), resets)
    if quotas.storage_bytes is not None:
        stored = bytes_stored(db, owner_id)["total"]
        if stored >= quotas.storage_bytes:
            return Exceeded("storage_bytes", quotas.storage_bytes, stored, None)
    return None
