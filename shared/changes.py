"""Change detection between runs of a schedule: items added, removed and changed.

An item's identity is the schedule's `key` field of the item (e.g. `sku`), or, without one,
a hash of the whole item. When a run's job completes, the items of that job and of the
previous completed run's job are read once each, and their fingerprints `(hash of the
identity, hash of the content, result id)` are sorted in a temporary SQLite file (the stdlib's
sqlite3, page cache capped at 2 MiB, sorting on disk when it has to); then both sorted lists are
walked side by side (a merge join), so memory stays flat however many items a run has, and
MongoDB gets no writes but the changes themselves. Changes land in `schedule_changes`, one row
per added, removed or changed item, pointing at the items in `results` (shared/items.py).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

from shared import items
from shared.jobs import JobDoc
from shared.schedules import ScheduleRepository, ScheduleRunDoc
from shared.windows import aware

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
KINDS = (ADDED, REMOVED, CHANGED)
BATCH = 1000
SQLITE_CACHE_KIB = 2048


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def identity(data: dict[str, Any], key: str | None) -> tuple[str, str]:
    """(readable identity, content hash) of one item's fields."""
    content = _canonical(data)
    if key and data.get(key) not in (None, "", []):
        value = data[key]
        return (value if isinstance(value, str) else _canonical(value)), _digest(content)
    return "#" + _digest(content)[:16], _digest(content)


class _Fingerprints:
    """Both runs' fingerprints in a temporary SQLite file, read back in identity order."""

    def __init__(self, directory: str) -> None:
        self.conn = sqlite3.connect(str(Path(directory) / "fingerprints.sqlite"))
        self.conn.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        self.conn.execute("PRAGMA temp_store = FILE")
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute("CREATE TABLE f (side INTEGER, k TEXT, h TEXT, r TEXT, key TEXT)")

    def load(self, db: Database, side: int, job_id: str, key: str | None) -> int:
        rows: list[tuple[int, str, str, str, str]] = []
        count = 0
        for item in items.iterate(db, job_id):
            readable, content = identity(item.get("data") or {}, key)
            rows.append((side, _digest(readable), content, item["ref"], readable[:500]))
            if len(rows) >= BATCH:
                self.conn.executemany("INSERT INTO f VALUES (?, ?, ?, ?, ?)", rows)
                count += len(rows)
                rows.clear()
        self.conn.executemany("INSERT INTO f VALUES (?, ?, ?, ?, ?)", rows)
        return count + len(rows)

    def ordered(self, side: int) -> Iterator[tuple[str, str, str, str]]:
        """(k, h, r, key) by identity; of items sharing one identity, the one with the least
        content hash stands for all (the same whatever order the items were read in)."""
        return iter(
            self.conn.execute(
                "SELECT k, min(h), r, key FROM f WHERE side = ? GROUP BY k ORDER BY k", (side,)
            )
        )

    def index(self) -> None:
        self.conn.execute("CREATE INDEX f_side_k ON f (side, k, h)")

    def close(self) -> None:
        self.conn.close()


def compare(
    db: Database, run: ScheduleRunDoc, before_job: str, after_job: str, key: str | None
) -> dict[str, int]:
    """Write the changes from `before_job`'s items to `after_job`'s as rows of `run`; counts."""
    counts = {ADDED: 0, REMOVED: 0, CHANGED: 0, "unchanged": 0}
    rows: list[dict[str, Any]] = []
    base = {"run_id": run["_id"], "schedule_id": run["schedule_id"], "owner_id": run["owner_id"]}

    def emit(kind: str, old: tuple | None, new: tuple | None) -> None:
        counts[kind] += 1
        rows.append(
            {
                **base,
                "kind": kind,
                "key": (new or old or ("", "", "", ""))[3],
                "before": old[2] if old else None,
                "after": new[2] if new else None,
            }
        )
        if len(rows) >= BATCH:
            db.schedule_changes.insert_many(rows, ordered=False)
            rows.clear()

    db.schedule_changes.delete_many({"run_id": run["_id"]})  # settling may repeat
    with tempfile.TemporaryDirectory(prefix="scrapemaster-changes-") as directory:
        prints = _Fingerprints(directory)
        try:
            prints.load(db, 0, before_job, key)
            prints.load(db, 1, after_job, key)
            prints.index()
            old_rows, new_rows = prints.ordered(0), prints.ordered(1)
            old, new = next(old_rows, None), next(new_rows, None)
            while old is not None or new is not None:
                if new is None or (old is not None and old[0] < new[0]):
                    emit(REMOVED, old, None)
                    old = next(old_rows, None)
                elif old is None or new[0] < old[0]:
                    emit(ADDED, None, new)
                    new = next(new_rows, None)
                else:
                    if old[1] != new[1]:
                        emit(CHANGED, old, new)
                    else:
                        counts["unchanged"] += 1
                    old, new = next(old_rows, None), next(new_rows, None)
        finally:
            prints.close()
    if rows:
        db.schedule_changes.insert_many(rows, ordered=False)
    return counts


def previous_completed(
    db: Database, run: ScheduleRunDoc, finished: Any = None
) -> ScheduleRunDoc | None:
    """The schedule's latest run completed before `finished` (when `run`'s job completed)
    whose job (and items) still exist."""
    limit = aware(finished) if finished is not None else None

    def earlier(other: ScheduleRunDoc) -> bool:
        ended = aware(other.get("completed_at"))
        return (
            other["_id"] != run["_id"]
            and other.get("status") == "completed"
            and ended is not None
            and (limit is None or ended < limit)
        )

    # newest slots first, a window of the (schedule_id, scheduled_for) index at a time
    candidates = []
    for other in ScheduleRepository(db).newest({"schedule_id": run["schedule_id"]}, earlier):
        candidates.append(other)
        if len(candidates) >= 5:
            break
    candidates.sort(key=lambda other: aware(other["completed_at"]) or datetime.min, reverse=True)
    for other in candidates:
        if other.get("job_id") and db.jobs.find_one({"_id": other["job_id"]}, {"_id": 1}):
            return other
    return None


def detect(db: Database, run: ScheduleRunDoc, job: JobDoc, key: str | None) -> dict | None:
    """Compare a completed run's items with the previous completed run's; the counts (None
    when there is nothing to compare with: the schedule's first completed run)."""
    previous = previous_completed(db, run, job.get("completed_at"))
    counts = None
    if previous:
        before = previous["job_id"]
        assert before is not None  # a completed run had a job
        counts = compare(db, run, before, job["_id"], key)
    db.schedule_runs.update_one(
        {"_id": run["_id"]}, {"$set": {"compared_with": previous and previous["_id"]}}
    )
    return counts


def changed(counts: dict[str, int] | None) -> bool:
    return counts is not None and any(counts.get(kind) for kind in KINDS)


def listing(
    db: Database, run_id: str, kind: str | None, skip: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of a run's changes with the items' fields before and after."""
    query: dict[str, Any] = {"run_id": run_id}
    if kind:
        query["kind"] = kind
    total = db.schedule_changes.count_documents(query)
    rows = list(
        db.schedule_changes.find(query)
        .sort([("kind", ASCENDING), ("key", ASCENDING)])
        .skip(skip)
        .limit(limit)
    )
    wanted = [r[side] for r in rows for side in ("before", "after") if r.get(side)]
    found = items.fetch(db, wanted)
    for row in rows:
        row["before"] = found.get(row["before"]) if row.get("before") else None
        row["after"] = found.get(row["after"]) if row.get("after") else None
    return rows, total
