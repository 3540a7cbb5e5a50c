"""Job counters kept with the transitions, so totals and listings never count documents.

One document per owner in `job_counters`:

    {_id: owner_id, v, seq, first_at,
     k: {"<engine>|<schedule_id or ->": {pending, running, completed, failed, cancelled,
                                          items, pages}},
     h: {"<YYYYMMDDHH>": jobs created in that hour (the last 26 hours)},
     d: {"<bucket>": finished runs by duration}, dsum, dn}

Every transition of a job (shared/jobs.py) changes its job document with a conditional update
pinned on what the counters count (status, and items/pages where they are counted), so the
delta it applies here is exact however many processes race. `items`/`pages` count the jobs
that are not running: a running job's figures move with every progress write, so readers add
the running jobs' own figures (few) to the stored sum.

`seq` numbers an owner's jobs in creation order; listings page through windows of it instead
of sorting the owner's whole history (shared/listing.py).

A process that dies between a job's write and its counter's leaves the counter one off;
`repair` recounts an owner and applies the recount only when no transition moved the counter
meanwhile (its version `v`). Beat runs it every COUNTER_CHECK_SECONDS.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared import jobs as states
from shared.jobs import JobDoc

COUNTED = states.STATUSES
NOT_COUNTED_WHILE = states.RUNNING  # a running job's items/pages move with its progress
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600)
HOURS_KEPT = 26  # jobs_last_24h needs 24 full hours and the one it starts in


def key_of(job: JobDoc) -> str:
    """The counter cell of a job: its requested engine and its schedule (both never change)."""
    return f"{job.get('engine') or 'auto'}|{job.get('schedule_id') or '-'}"


def split_key(key: str) -> tuple[str, str | None]:
    engine, schedule = key.split("|", 1)
    return engine, (None if schedule == "-" else schedule)


def hour_of(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H")


def _stored(job: Mapping[str, Any], field: str) -> int:
    """What a job adds to the `items`/`pages` sums: nothing while it runs."""
    if job.get("status") == NOT_COUNTED_WHILE:
        return 0
    return int(job.get(field) or 0)


def pins(before: JobDoc, after_status: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields a transition's write must find unchanged for its delta to be exact: the
    counted figures that the write does not set itself."""
    pinned: dict[str, Any] = {}
    for field in ("items_scraped", "pages_crawled"):
        counted_before = before.get("status") != NOT_COUNTED_WHILE
        kept = field not in fields and after_status != NOT_COUNTED_WHILE
        if counted_before or kept:
            pinned[field] = before.get(field, 0)
    return pinned


def _bucket(seconds: float) -> str:
    for bound in DURATION_BUCKETS:
        if seconds <= bound:
            return str(bound)
    return "inf"


class JobCounters:
    """Reads and moves the per-owner counters."""

    def __init__(self, db: Database):
        self.db = db
        self.coll = db.job_counters

    # -- writes ---------------------------------------------------------------------------
    def _apply(self, owner_id: str, inc: dict[str, int | float], **extra: Any) -> None:
        inc = {path: n for path, n in inc.items() if n}
        if not inc and not extra:
            return
        update: dict[str, Any] = {"$inc": {**inc, "v": 1}}
        update.update(extra)
        self.coll.update_one({"_id": owner_id}, update, upsert=True)

    def created(self, job: JobDoc) -> int:
        """Count a new pending job; its number in the owner's creation order."""
        owner = job["owner_id"]
        cell = f"k.{key_of(job)}"
        self._apply(
            owner,
            {"seq": 1, f"{cell}.{states.PENDING}": 1, f"h.{hour_of(job['created_at'])}": 1},
            **{"$min": {"first_at": job["created_at"]}},
        )
        found = self.coll.find_one({"_id": owner}, {"seq": 1})
        # read after the increment: a concurrent create may read the same number; listings
        # order equal numbers by id, so ties cost nothing
        return int(found["seq"]) if found else 0

    def moved(self, before: JobDoc, after: JobDoc) -> None:
        """Count one transition: `before` is the exact document the conditional write found."""
        cell = f"k.{key_of(before)}"
        inc: dict[str, int | float] = {}
        if before["status"] != after["status"]:
            inc[f"{cell}.{before['status']}"] = -1
            inc[f"{cell}.{after['status']}"] = 1
        inc[f"{cell}.items"] = _stored(after, "items_scraped") - _stored(before, "items_scraped")
        inc[f"{cell}.pages"] = _stored(after, "pages_crawled") - _stored(before, "pages_crawled")
        duration = after.get("duration_seconds")
        if (
            before["status"] == states.RUNNING
            and after["status"] in states.TERMINAL
            and isinstance(duration, int | float)
        ):
            inc[f"d.{_bucket(duration)}"] = 1
            inc["dn"] = 1
            inc["dsum"] = duration
        self._apply(before["owner_id"], inc)

    def removed(self, job: JobDoc, now: datetime) -> None:
        """Count a deleted job out."""
        cell = f"k.{key_of(job)}"
        inc: dict[str, int | float] = {
            f"{cell}.{job['status']}": -1,
            f"{cell}.items": -_stored(job, "items_scraped"),
            f"{cell}.pages": -_stored(job, "pages_crawled"),
        }
        created = job.get("created_at")
        if created is not None and now - created < timedelta(hours=HOURS_KEPT - 1):
            inc[f"h.{hour_of(created)}"] = -1
        self._apply(job["owner_id"], inc)

    # -- reads ----------------------------------------------------------------------------
    def of(self, owner_id: str | None) -> list[dict[str, Any]]:
        """The counter documents of one owner, or of everyone (None)."""
        query = {} if owner_id is None else {"_id": owner_id}
        return list(self.coll.find(query))

    def running_sum(self, owner_id: str | None, field: str) -> int:
        """What the running jobs hold (a handful): their figures move with every progress
        write, so the counters leave them out until they stop."""
        query: dict[str, Any] = {"status": states.RUNNING}
        if owner_id is not None:
            query = {"owner_id": owner_id, **query}
        return sum(int(job.get(field) or 0) for job in self.db.jobs.find(query, {field: 1}))

    def stored_items(self, owner_id: str) -> int:
        """Items the owner's jobs hold now (MAX_STORED_ITEMS_PER_USER counts these)."""
        cells = self.cells(self.of(owner_id))
        return self.stored_sum(cells, "items") + self.running_sum(owner_id, "items_scraped")

    @staticmethod
    def cells(
        docs: Iterable[dict[str, Any]], engine: str | None = None, schedule_id: str | None = None
    ) -> list[dict[str, int]]:
        """The counter cells matching an engine and/or schedule filter."""
        found = []
        for doc in docs:
            for key, cell in (doc.get("k") or {}).items():
                cell_engine, cell_schedule = split_key(key)
                if engine is not None and cell_engine != engine:
                    continue
                if schedule_id is not None and cell_schedule != schedule_id:
                    continue
                found.append(cell)
        return found

    @staticmethod
    def by_status(cells: Iterable[dict[str, int]]) -> dict[str, int]:
        totals = {status: 0 for status in COUNTED}
        for cell in cells:
            for status in COUNTED:
                totals[status] += int(cell.get(status) or 0)
        return totals

    @staticmethod
    def stored_sum(cells: Iterable[dict[str, int]], field: str) -> int:
        return sum(int(cell.get(field) or 0) for cell in cells)

    @staticmethod
    def created_since(docs: Iterable[dict[str, Any]], first_full_hour: datetime) -> int:
        """Jobs created in the hours from `first_full_hour` on (hour buckets)."""
        start = hour_of(first_full_hour)
        return sum(
            int(n or 0) for doc in docs for hour, n in (doc.get("h") or {}).items() if hour >= start
        )

    @staticmethod
    def durations(docs: Iterable[dict[str, Any]]) -> tuple[list[tuple[str, int]], float, int]:
        """The finished-run duration histogram over `docs`: cumulative buckets, sum, count."""
        docs = list(docs)
        per_bucket = {str(b): 0 for b in DURATION_BUCKETS} | {"inf": 0}
        total, count = 0.0, 0
        for doc in docs:
            for bucket, n in (doc.get("d") or {}).items():
                if bucket in per_bucket:
                    per_bucket[bucket] += int(n or 0)
            total += float(doc.get("dsum") or 0)
            count += int(doc.get("dn") or 0)
        buckets, running = [], 0
        for bound in DURATION_BUCKETS:
            running += per_bucket[str(bound)]
            buckets.append((str(float(bound)), running))
        buckets.append(("+Inf", running + per_bucket["inf"]))
        return buckets, total, count

    # -- repair ---------------------------------------------------------------------------
    def recount(self, now: datetime, owner_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Every owner's cells and recent hour buckets (or one owner's), counted from the job
        documents in one pass: {owner_id: {"k": cells, "h": hours}}."""
        match = {} if owner_id is None else {"owner_id": owner_id}
        counted: dict[str, dict[str, Any]] = {}
        for row in self.db.jobs.aggregate(
            [
                {"$match": match},
                {
                    "$group": {
                        "_id": {
                            "owner": "$owner_id",
                            "engine": "$engine",
                            "schedule": "$schedule_id",
                            "status": "$status",
                        },
                        "n": {"$sum": 1},
                        "items": {"$sum": "$items_scraped"},
                        "pages": {"$sum": "$pages_crawled"},
                    }
                },
            ]
        ):
            group = row["_id"]
            owner = counted.setdefault(str(group.get("owner")), {"k": {}, "h": {}})
            key = key_of({"engine": group.get("engine"), "schedule_id": group.get("schedule")})
            cell = owner["k"].setdefault(key, dict.fromkeys((*COUNTED, "items", "pages"), 0))
            status = group.get("status")
            if status in cell:
                cell[status] += row["n"]
            if status != NOT_COUNTED_WHILE:
                cell["items"] += int(row.get("items") or 0)
                cell["pages"] += int(row.get("pages") or 0)
        since = (now - timedelta(hours=HOURS_KEPT - 1)).replace(minute=0, second=0, microsecond=0)
        # created_at first: the index on it alone serves the query (an hour's worth of jobs)
        for row in self.db.jobs.find(
            {"created_at": {"$gte": since}, **match}, {"created_at": 1, "owner_id": 1}
        ):
            hours = counted.setdefault(str(row.get("owner_id")), {"k": {}, "h": {}})["h"]
            hour = hour_of(row["created_at"])
            hours[hour] = hours.get(hour, 0) + 1
        return counted

    def repair(self, now: datetime, settle_seconds: float = 1.0) -> list[str]:
        """Recount every owner and store the recounts that differ, for the owners whose
        counter no transition moved from before the recount until `settle_seconds` after it
        (so a transition whose counter write was still on its way is never counted twice).
        The owners corrected."""
        stored = {str(doc["_id"]): doc for doc in self.coll.find({})}
        counted = self.recount(now)
        differing = [
            owner
            for owner in set(stored) | set(counted)
            if not _same(stored.get(owner) or {}, counted.get(owner) or {"k": {}, "h": {}}, now)
        ]
        if not differing:
            return []
        time.sleep(settle_seconds)
        corrected = []
        for owner in sorted(differing):
            before = stored.get(owner)
            fresh = counted.get(owner) or {"k": {}, "h": {}}
            if before is None:
                try:
                    result = self.coll.update_one(
                        {"_id": owner, "v": {"$exists": False}},
                        {"$set": fresh, "$inc": {"v": 1}},
                        upsert=True,
                    )
                except DuplicateKeyError:
                    continue  # a transition made the document meanwhile: next time
            else:
                result = self.coll.update_one(
                    {"_id": owner, "v": before.get("v")}, {"$set": fresh, "$inc": {"v": 1}}
                )
            if result.modified_count or result.upserted_id:
                corrected.append(owner)
        return corrected

    def prune_hours(self, now: datetime) -> None:
        """Forget hour buckets older than the window that jobs_last_24h reads."""
        oldest = hour_of(now - timedelta(hours=HOURS_KEPT))
        for doc in self.coll.find({}, {"h": 1}):
            stale = {f"h.{hour}": "" for hour in (doc.get("h") or {}) if hour < oldest}
            if stale:
                self.coll.update_one({"_id": doc["_id"]}, {"$unset": stale})


def _same(stored: dict[str, Any], counted: dict[str, Any], now: datetime) -> bool:
    return _same_cells(stored.get("k") or {}, counted["k"]) and _same_hours(
        stored.get("h") or {}, counted["h"], now
    )


def _same_cells(stored: dict[str, Any], counted: dict[str, dict[str, int]]) -> bool:
    fields = (*COUNTED, "items", "pages")
    for key in set(stored) | set(counted):
        a, b = stored.get(key) or {}, counted.get(key) or {}
        if any(int(a.get(f) or 0) != int(b.get(f) or 0) for f in fields):
            return False
    return True


def _same_hours(stored: dict[str, Any], counted: dict[str, int], now: datetime) -> bool:
    oldest = hour_of(now - timedelta(hours=HOURS_KEPT - 1))
    keys = {h for h in set(stored) | set(counted) if h >= oldest}
    return all(int(stored.get(h) or 0) == int(counted.get(h) or 0) for h in keys)


def migrate(db: Database) -> None:
    """Number and count the jobs of a store from before counters existed; once per store
    (the first process to start does it; others go on meanwhile)."""
    if db.meta.find_one({"_id": "job_counters", "version": 1}) is not None:
        return
    if db.jobs.find_one({}, {"_id": 1}) is None:  # a new store: nothing to number
        db.meta.update_one({"_id": "job_counters"}, {"$set": {"version": 1}}, upsert=True)
        return
    started = states.now()
    try:
        db.meta.insert_one({"_id": "job_counters", "version": 0, "started_at": started})
    except DuplicateKeyError:
        # another process is on it, unless it died on it long ago: then take it over
        abandoned = started - timedelta(minutes=10)
        taken = db.meta.update_one(
            {"_id": "job_counters", "version": 0, "started_at": {"$lt": abandoned}},
            {"$set": {"started_at": started}},
        )
        if not taken.modified_count:
            return
    counters = JobCounters(db)
    tops = {str(d["_id"]): int(d.get("seq") or 0) for d in counters.coll.find({}, {"seq": 1})}
    unnumbered = sorted(
        db.jobs.find({"seq": {"$exists": False}}, {"owner_id": 1, "created_at": 1}),
        key=lambda job: (str(job.get("owner_id")), job.get("created_at") or states.now()),
    )
    for job in unnumbered:
        owner = str(job.get("owner_id"))
        tops[owner] = tops.get(owner, 0) + 1
        db.jobs.update_one({"_id": job["_id"]}, {"$set": {"seq": tops[owner]}})
    for owner, top in tops.items():
        counters.coll.update_one({"_id": owner}, {"$max": {"seq": top}}, upsert=True)
    counters.repair(states.now(), settle_seconds=0)
    db.meta.update_one({"_id": "job_counters"}, {"$set": {"version": 1}})
