"""The item sink of a running job: batched, idempotent item writes (in chunks, shared/items.py),
batched progress, and the job's files (shared/files.py)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from pymongo import UpdateOne, WriteConcern
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from shared import items as stored
from shared import jobs
from shared.files import JobFiles
from shared.items import chunk_key

logger = logging.getLogger(__name__)
_STOP = object()


class ItemSink:
    """Collects what an engine reports and writes it to MongoDB from a background thread.

    Items go out in batches of `batch_size` under a unique `_id` per (job, page, position), so a
    re-run of the same job adds no duplicates. Counters reach the job document at most every
    `interval` seconds. The same thread polls the job's status, so an engine can stop when a
    user cancels (`cancelled` becomes set).

    The sink belongs to one run of the job (`run_id`, written by the claim). Every counter,
    heartbeat and log write filters on it, and every item and log line carries it, so a run
    that lost the job (cancelled and retried, re-queued, reset or deleted meanwhile) can
    neither overwrite a newer attempt's counters nor leave items behind: it sees `lost` and
    stops, and `purge()` removes what it wrote when its items no longer belong to the job.
    """

    def __init__(
        self,
        db: Database,
        job_id: str,
        max_pages: int,
        batch_size: int = 500,
        interval: float = 0.5,
        max_items: int = 1_000_000,
        on_progress: Callable[[dict[str, Any]], Any] | None = None,
        on_log: Callable[[list[dict[str, Any]]], Any] | None = None,
        run_id: str | None = None,
        epoch: int = 0,
        count_existing: bool = True,
        owner_id: str | None = None,
        max_files: int = 1_000,
    ):
        self.db = db
        # acknowledged only once in the store's journal: the job's final count is read back
        # from the store, so a write acknowledged from memory and lost when the store dies
        # (SIGKILL, crash) would leave a page missing with counters that agree (issue 21)
        self.results = db.results.with_options(write_concern=WriteConcern(j=True))
        self.job_id = job_id
        self.run_id = run_id
        self.epoch = epoch
        self.max_pages = max(1, max_pages)
        self.batch_size = batch_size
        self.interval = interval
        self.max_items = max_items
        self.on_progress = on_progress
        self.on_log = on_log
        self._reported: dict[str, Any] = {}
        self.cancelled = threading.Event()
        self.lost = threading.Event()  # another run owns the job now, or it was deleted
        self.full = threading.Event()
        self.pages = 0
        self.items_seen = 0
        self.items_failed = 0
        # a first attempt has no earlier items: skip the count (it reads the job's chunks)
        self.inserted = stored.count(db, job_id) if count_existing else 0
        self._next = self.inserted  # position of the next item stored
        self._buffer: list[dict[str, Any]] = []
        self._buffered = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._run, name=f"sink-{job_id}", daemon=True)
        self._logs: list[dict[str, Any]] = []
        self.owner_id = owner_id
        self.max_files = max_files
        self.files_stored = 0
        self._captures: dict[tuple[str, str], int] = {}  # (kind, page) -> captures this run
        self.browser_seconds = 0.0  # browser tabs open for this run (shared/usage.py)
        # the owner's monthly browser time left as the run started (None: no quota); past it
        # the run stops with `quota` set (an error of type quota_exceeded)
        self.browser_budget: float | None = None
        self.quota: dict[str, Any] | None = None
        self._thread.start()

    # -- called by engines (any thread) -------------------------------------------------
    def page(self, url: str, status: int) -> None:
        """One page fetched (whatever its status)."""
        with self._lock:
            self.pages += 1

    def items(self, page_url: str, found: list[dict[str, Any]], key: str | None = None) -> None:
        """Items extracted from one page, in page order. `key` (default the page's URL) keys
        the stored chunks: a re-run giving the same key adds no duplicates."""
        if not found:
            return
        stamp = jobs.now()
        batch: list[dict[str, Any]] | None = None
        with self._lock:
            room = self.max_items - self.items_seen
            if room <= 0:
                self.full.set()
                return
            if len(found) > room:
                found = found[:room]
                self.full.set()
            for part, data in enumerate(stored.split(found)):
                self._buffer.append(
                    {
                        "_id": chunk_key(self.job_id, key or page_url, part, self.epoch),
                        "job_id": self.job_id,
                        "run_id": self.run_id,
                        "epoch": self.epoch,
                        "url": page_url,
                        "n": len(data),
                        "items": data,
                        "scraped_at": stamp,
                    }
                )
                self._buffered += len(data)
            self.items_seen += len(found)
            if self._buffered >= self.batch_size:
                batch, self._buffer, self._buffered = self._buffer, [], 0
        if batch:
            self._queue.put(batch)

    def file(self, page_url: str, kind: str, content_type: str, data: bytes) -> bool:
        """A screenshot or PDF of a page, stored in GridFS at once (shared/files.py); False
        when not stored (MAX_FILES_PER_JOB reached, a write error), said in the job's log.
        Keyed by (epoch, kind, page, nth capture of it), so a re-run replaces, not adds."""
        with self._lock:
            if self.files_stored >= self.max_files:
                first = self.files_stored == self.max_files
                self.files_stored += 1  # counts the refused ones too: one warning only
                refused = True
            else:
                refused = False
                nth = self._captures.get((kind, page_url), 0)
                self._captures[(kind, page_url)] = nth + 1
                self.files_stored += 1
        if refused:
            if first:
                self.log(
                    "WARNING",
                    f"no more files stored: the job reached {self.max_files} (MAX_FILES_PER_JOB)",
                )
            return False
        key = f"{self.epoch}:{kind}:{nth}:{page_url}"
        try:
            JobFiles(self.db).put(
                self.job_id,
                self.owner_id,
                page_url,
                kind,
                content_type,
                data,
                run_id=self.run_id,
                epoch=self.epoch,
                key=key,
            )
        except PyMongoError as exc:
            logger.exception("job %s: storing a %s of %s failed", self.job_id, kind, page_url)
            self.log("ERROR", f"the {kind} of {page_url} could not be stored: {exc}")
            return False
        return True

    def log(self, level: str, message: str) -> None:
        """A line for the job's log (GET /jobs/{id}/logs)."""
        with self._lock:
            self._logs.append(
                {
                    "job_id": self.job_id,
                    "run_id": self.run_id,
                    "timestamp": jobs.now(),
                    "level": level,
                    "message": message,
                }
            )

    def browser_time(self, seconds: float) -> None:
        """A browser tab was open `seconds` more for this run (metered as browser_seconds)."""
        with self._lock:
            self.browser_seconds += max(0.0, seconds)
            over = self.browser_budget is not None and self.browser_seconds >= self.browser_budget
        if over and self.quota is None:
            self.quota = {
                "type": "quota_exceeded",
                "message": "the account's browser minutes this month are used up "
                "(browser_minutes_per_month); the items so far are kept",
            }

    @property
    def should_stop(self) -> bool:
        return (
            self.cancelled.is_set()
            or self.full.is_set()
            or self.lost.is_set()
            or self.quota is not None
        )

    def owner_filter(self) -> dict[str, Any]:
        """The job document as long as this run owns it."""
        query: dict[str, Any] = {"_id": self.job_id}
        if self.run_id is not None:
            query["run_id"] = self.run_id
        return query

    def check_owner(self) -> jobs.JobDoc | None:
        """Re-read the job; sets `lost` when another run owns it or it is gone."""
        job = self.db.jobs.find_one({"_id": self.job_id}, {"status": 1, "run_id": 1, "epoch": 1})
        if job is None or (self.run_id is not None and job.get("run_id") != self.run_id):
            self.lost.set()
            self.cancelled.set()
        return job

    def purge(self, job: jobs.JobDoc | None) -> int:
        """After losing the job: remove this run's items and log lines when they no longer
        belong to it (the job was deleted, or reset into a new epoch). A run superseded by a
        retry keeps its items: a retry keeps earlier items, and the keys de-duplicate them."""
        if self.run_id is None:
            return 0
        if job is not None and int(job.get("epoch") or 0) == self.epoch:
            return 0
        mine = {"job_id": self.job_id, "run_id": self.run_id}
        removed = self.db.results.delete_many(mine).deleted_count
        self.db.logs.delete_many(mine)
        JobFiles(self.db).delete_run(self.job_id, self.run_id)
        return removed

    # -- called by the task -------------------------------------------------------------
    def close(self) -> dict[str, int | float]:
        """Write everything still buffered; the final counters."""
        with self._lock:
            batch, self._buffer, self._buffered = self._buffer, [], 0
        if batch:
            self._queue.put(batch)
        self._queue.put(_STOP)
        self._thread.join()
        self._flush_logs()
        return self.counters()

    def counters(self) -> dict[str, int | float]:
        return {
            "pages_crawled": self.pages,
            "items_scraped": self.inserted,
            "items_failed": self.items_failed,
            "browser_seconds": round(self.browser_seconds, 3),
        }

    # -- background thread --------------------------------------------------------------
    def _run(self) -> None:
        last = time.monotonic()
        while True:
            try:
                batch = self._queue.get(timeout=self.interval)
            except queue.Empty:
                batch = None
            if batch is _STOP:
                return
            if batch:
                self._write(batch)
            if time.monotonic() - last >= self.interval:
                last = time.monotonic()
                self._report()

    def _write(self, batch: list[dict[str, Any]]) -> None:
        """Insert chunks at the next positions; positions of chunks a re-run already stored
        (same keys: duplicates) go to the chunks after them, so positions stay dense."""
        start = self._next
        for chunk in batch:
            chunk["first"] = self._next
            self._next += chunk["n"]
        rejected: set[int] = set()
        try:
            self.results.insert_many(batch, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            rejected = {int(e["index"]) for e in errors}
            real = [e for e in errors if e.get("code") != 11000]
            if real:
                lost = sum(batch[int(e["index"])]["n"] for e in real)
                self.items_failed += lost
                self.log("ERROR", f"{lost} items could not be stored: {real[0].get('errmsg')}")
        except PyMongoError as exc:
            lost = sum(chunk["n"] for chunk in batch)
            self.items_failed += lost
            self._next = start
            logger.exception("job %s: storing %d items failed", self.job_id, lost)
            self.log("ERROR", f"{lost} items could not be stored: {exc}")
            return
        if rejected:
            self._next = start
            moves = []
            for index, chunk in enumerate(batch):
                if index in rejected:
                    continue
                if chunk["first"] != self._next:
                    moves.append(UpdateOne({"_id": chunk["_id"]}, {"$set": {"first": self._next}}))
                self._next += chunk["n"]
            if moves:
                self.results.bulk_write(moves, ordered=False)
        self.inserted += sum(c["n"] for i, c in enumerate(batch) if i not in rejected)

    def _flush_logs(self) -> None:
        with self._lock:
            lines, self._logs = self._logs, []
        if lines:
            try:
                self.db.logs.insert_many(lines, ordered=True)
            except PyMongoError:
                logger.exception("job %s: writing %d log lines failed", self.job_id, len(lines))
            if self.on_log:
                self.on_log(lines)

    def _flush_items(self) -> None:
        """Write what is buffered now: the item count moves with the work, not per batch."""
        with self._lock:
            batch, self._buffer, self._buffered = self._buffer, [], 0
        if batch:
            self._write(batch)

    def _report(self) -> None:
        self._flush_items()
        progress = min(99, int(self.pages * 100 / self.max_pages))
        counters = {**self.counters(), "progress": progress}
        try:
            self._flush_logs()
            # update_one, not find_one_and_update: SecantusDB scans for every findAndModify
            written = self.db.jobs.update_one(
                {**self.owner_filter(), "status": jobs.RUNNING},
                {"$set": {**counters, "heartbeat_at": jobs.now()}},
            )
            if not written.matched_count:  # cancelled, deleted, or now another run's: stop
                self.cancelled.set()
                self.check_owner()
        except PyMongoError:
            logger.exception("job %s: progress update failed", self.job_id)
            return
        if self.on_progress and counters != self._reported:  # an event only when it moved
            self._reported = counters
            self.on_progress(counters)
