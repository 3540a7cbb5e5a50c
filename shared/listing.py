"""Pages of a job listing read in windows of an index, never the caller's whole history.

An owner's jobs are numbered in creation order (`seq`, shared/counters.py). The newest page
is the jobs in the last window of numbers, found with an index on (owner_id, [one filter],
seq); when deletes leave gaps, the next window reaches further down, sized by the density
seen so far. The embedded store sorts every document a query matches, so a query that only
matches one window costs the same at 100 jobs as at 100,000. An admin's listing (every
owner) walks `created_at` the same way. Other orders (`status`, `priority`) sort the match.

Paging: `skip`/`limit`, or a keyset cursor (`after`/`before`: a job id of the previous page)
that costs the same on page 1,000 as on page 1. A `skip` past half of the matching jobs is
read from the other end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database

from shared import jobs as states
from shared.counters import JobCounters
from shared.jobs import JobDoc

FILTERS = ("status", "engine", "schedule_id")
# the filters an index serves, in the order one is chosen: (owner_id, status, seq) and
# (owner_id, schedule_id, seq); the others (and an admin's) are checked here
INDEXED = {True: ("status", "schedule_id"), False: ()}
MAX_WINDOWS = 64


class CursorNotFound(LookupError):
    """The job named as a page cursor does not exist (or is not the caller's)."""


@dataclass
class Page:
    jobs: list[JobDoc]
    total: int
    more_after: bool  # another page follows in listing order


def _key(job: Mapping[str, Any], field: str) -> tuple[Any, str]:
    return (job.get(field), str(job["_id"]))


class JobListing:
    """GET /jobs: one page of an owner's (or everyone's) jobs."""

    def __init__(self, db: Database):
        self.db = db
        self.counters = JobCounters(db)

    def total(
        self,
        owner_id: str | None,
        filters: dict[str, Any],
        docs: list[dict[str, Any]] | None = None,
    ) -> int:
        """How many jobs match, from the counters."""
        docs = self.counters.of(owner_id) if docs is None else docs
        cells = self.counters.cells(docs, filters.get("engine"), filters.get("schedule_id"))
        counts = self.counters.by_status(cells)
        if filters.get("status"):
            return counts.get(filters["status"], 0)
        return sum(counts.values())

    def page(
        self,
        owner_id: str | None,
        filters: dict[str, Any],
        *,
        descending: bool = True,
        skip: int = 0,
        limit: int = 50,
        after: str | None = None,
        before: str | None = None,
    ) -> Page:
        """Jobs in creation order (newest first when `descending`)."""
        filters = {k: v for k, v in filters.items() if k in FILTERS and v}
        docs = self.counters.of(owner_id)
        total = self.total(owner_id, filters, docs)
        field = "seq" if owner_id is not None else "created_at"
        cursor = None
        if after or before:
            cursor = self._cursor(owner_id, after or before or "", field)
        backwards = before is not None  # the page that precedes the cursor
        down = descending != backwards
        if cursor is None and skip + limit > total // 2 + limit and total > 2 * limit:
            # deep in: read it from the other end (exact, since `total` is)
            skip_other = max(0, total - skip - limit)
            take = min(limit, max(0, total - skip))
            found = self._walk(owner_id, docs, filters, field, not down, None, skip_other + take)
            rows = list(reversed(found[skip_other : skip_other + take]))
            return Page(rows, total, skip + limit < total)
        found = self._walk(owner_id, docs, filters, field, down, cursor, skip + limit + 1)
        rows = found[skip : skip + limit]
        more = len(found) > skip + limit
        if backwards:
            rows.reverse()
            more = True  # the cursor's own page follows
        return Page(rows, total, more)

    # -- internals ------------------------------------------------------------------------
    def _cursor(self, owner_id: str | None, job_id: str, field: str) -> tuple[Any, str]:
        query: dict[str, Any] = {"_id": job_id}
        if owner_id is not None:
            query["owner_id"] = owner_id
        job = self.db.jobs.find_one(query, {field: 1})
        if job is None or job.get(field) is None:
            raise CursorNotFound(job_id)
        return _key(job, field)

    def _base(self, owner_id: str | None, filters: dict[str, Any]) -> dict[str, Any]:
        """The equality part that matches an index exactly (the rest is checked here)."""
        base: dict[str, Any] = {} if owner_id is None else {"owner_id": owner_id}
        for name in INDEXED[owner_id is not None]:
            if name in filters:
                base[name] = filters[name]
                break
        return base

    def _bounds(
        self, owner_id: str | None, docs: list[dict[str, Any]], down: bool
    ) -> tuple[float, float, float]:
        """(start, end of the range, first window size) in the ordering field's units."""
        if owner_id is not None:
            top = max((int(d.get("seq") or 0) for d in docs), default=0)
            return (top + 1.0, 0.0, 64.0) if down else (0.0, top + 1.0, 64.0)
        now = states.now().timestamp() + 1
        first = min((d["first_at"] for d in docs if d.get("first_at")), default=None)
        oldest = (first.timestamp() - 1) if isinstance(first, datetime) else now - 1
        last_day = self.counters.created_since(docs, states.now() - timedelta(hours=24))
        per_second = max(last_day / 86400, 1 / 3600)
        window = 64 / per_second
        return (now, oldest, window) if down else (oldest, now, window)

    def _walk(
        self,
        owner_id: str | None,
        docs: list[dict[str, Any]],
        filters: dict[str, Any],
        field: str,
        down: bool,
        cursor: tuple[Any, str] | None,
        need: int,
    ) -> list[JobDoc]:
        """At least `need` matching jobs from the start (or the cursor) in walking order,
        or all there are."""
        start, end, window = self._bounds(owner_id, docs, down)
        window = max(window, float(need) * 1.25)
        if cursor is not None:
            at = cursor[0]
            start = (at.timestamp() if isinstance(at, datetime) else float(at)) + (
                0.001 if down else -0.001
            )
        base = self._base(owner_id, filters)
        rest = {k: v for k, v in filters.items() if k not in base}
        found: list[JobDoc] = []
        edge = start
        for _ in range(MAX_WINDOWS):
            if (down and edge <= end) or (not down and edge >= end):
                break
            other = max(edge - window, end) if down else min(edge + window, end)
            low, high = (other, edge) if down else (edge, other)
            rows = self.db.jobs.find(
                {**base, field: {"$gte": _unit(field, low), "$lt": _unit(field, high)}}
            )
            batch = [
                job
                for job in rows
                if all(job.get(k) == v for k, v in rest.items())
                and (
                    cursor is None
                    or (_key(job, field) < cursor if down else _key(job, field) > cursor)
                )
            ]
            batch.sort(key=lambda job: _key(job, field), reverse=down)
            found.extend(batch)
            if len(found) >= need:
                break
            edge = other
            density = len(batch) / max(high - low, 1e-9)
            wanted = (need - len(found)) * 1.5 / density if density else window * 4
            window = min(max(window * 2, wanted), window * 64)
        return found


def _unit(field: str, value: float) -> Any:
    """A window bound in the ordering field's own type."""
    if field == "created_at":
        return datetime.fromtimestamp(value, tz=states.now().tzinfo)
    return value
