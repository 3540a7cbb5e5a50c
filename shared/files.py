"""A job's files (screenshots and PDFs) in MongoDB GridFS: stored, listed, read, counted and
deleted with the job.

Plain pymongo `gridfs` (bucket `fs`: collections `fs.files` and `fs.chunks`), so it works on
SecantusDB and on a real mongod alike. What ScrapeMaster knows of a file is in its GridFS
`metadata`: `job_id`, `owner_id`, `url`, `kind`, `content_type`, and the run that wrote it
(`run_id`, `epoch`, `key`), so a reset can drop an earlier epoch's files and a retry replaces
the file of a page instead of adding it twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict
from urllib.parse import urlsplit

import gridfs
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.database import Database

KINDS = {"screenshot": "image/png", "pdf": "application/pdf"}
EXTENSIONS = {"screenshot": "png", "pdf": "pdf"}
BUCKET = "fs"
CHUNK_BYTES = 255 * 1024  # GridFS' default; a 10 MiB file is ~40 chunks


class StoredFile(TypedDict):
    """A file as the API answers it (API.md § Files)."""

    id: str
    job_id: str
    url: str
    kind: str
    content_type: str
    size: int
    created_at: datetime


class FileUsage(TypedDict):
    count: int
    bytes: int


def _doc(raw: dict[str, Any]) -> StoredFile:
    meta = raw.get("metadata") or {}
    created = raw.get("uploadDate")
    if isinstance(created, datetime) and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return {
        "id": str(raw["_id"]),
        "job_id": str(meta.get("job_id")),
        "url": str(meta.get("url") or ""),
        "kind": str(meta.get("kind") or ""),
        "content_type": str(meta.get("content_type") or raw.get("contentType") or ""),
        "size": int(raw.get("length") or 0),
        "created_at": created or datetime.now(UTC),
    }


def _object_id(file_id: Any) -> ObjectId | None:
    try:
        return ObjectId(str(file_id))
    except (InvalidId, TypeError):
        return None


def download_name(url: str, kind: str, n: int) -> str:
    """A readable file name: `<host>-<n>.png` (`.pdf`); only [A-Za-z0-9._-] in it."""
    host = urlsplit(url).hostname or "page"
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in host)[:100] or "page"
    return f"{safe}-{n}.{EXTENSIONS.get(kind, 'bin')}"


class JobFiles:
    """The files of jobs in GridFS (one bucket for all jobs, found by `metadata.job_id`)."""

    def __init__(self, database: Database):
        self.db = database
        self.bucket = gridfs.GridFSBucket(
            database, bucket_name=BUCKET, chunk_size_bytes=CHUNK_BYTES
        )
        self.files = database[f"{BUCKET}.files"]
        self.chunks = database[f"{BUCKET}.chunks"]

    def ensure_indexes(self) -> None:
        """GridFS' own indexes and the ones the listings and sums use; idempotent."""
        self.files.create_index([("filename", 1), ("uploadDate", 1)])
        self.chunks.create_index([("files_id", 1), ("n", 1)], unique=True)
        self.files.create_index([("metadata.job_id", 1), ("uploadDate", 1)])
        self.files.create_index("metadata.owner_id")

    # ------------------------------------------------------------------ writing

    def put(
        self,
        job_id: str,
        owner_id: str | None,
        url: str,
        kind: str,
        content_type: str,
        data: bytes,
        *,
        run_id: str | None = None,
        epoch: int = 0,
        key: str | None = None,
    ) -> StoredFile:
        """Store one file of job `job_id`; the file as listed. `key` names the capture (e.g.
        epoch, kind and page): a file of the same job with the same key is replaced, so a
        re-run of a page stores it once."""
        if kind not in KINDS:
            raise ValueError(f"unknown file kind {kind!r}")
        if key is not None:
            for old in self.files.find(
                {"metadata.job_id": job_id, "metadata.key": key}, {"_id": 1}
            ):
                self._delete(old["_id"])
        metadata = {
            "job_id": job_id,
            "owner_id": owner_id,
            "url": url,
            "kind": kind,
            "content_type": content_type,
            "run_id": run_id,
            "epoch": epoch,
            "key": key,
        }
        filename = f"{job_id}/{kind}"
        file_id = self.bucket.upload_from_stream(filename, data, metadata=metadata)
        raw = self.files.find_one({"_id": file_id})
        assert raw is not None  # just written
        return _doc(raw)

    # ------------------------------------------------------------------ reading

    def list(self, job_id: str, skip: int = 0, limit: int = 50) -> tuple[int, list[StoredFile]]:
        """(total, the files from `skip`), oldest first."""
        query = {"metadata.job_id": job_id}
        total = self.files.count_documents(query)
        found = (
            self.files.find(query)
            .sort([("uploadDate", 1), ("_id", 1)])
            .skip(max(0, skip))
            .limit(max(0, limit))
        )
        return total, [_doc(raw) for raw in found]

    def get(self, job_id: str, file_id: str) -> StoredFile | None:
        """The file `file_id` of job `job_id`, or None (unknown, malformed id, another job's)."""
        oid = _object_id(file_id)
        if oid is None:
            return None
        raw = self.files.find_one({"_id": oid, "metadata.job_id": job_id})
        return _doc(raw) if raw is not None else None

    def open(self, job_id: str, file_id: str) -> gridfs.GridOut | None:
        """A readable stream of the file's bytes (`.read()`, `.length`), or None."""
        found = self.get(job_id, file_id)
        if found is None:
            return None
        try:
            return self.bucket.open_download_stream(ObjectId(found["id"]))
        except gridfs.errors.NoFile:
            return None

    def position(self, job_id: str, file_id: str) -> int:
        """The file's place (1-based) among its job's files, oldest first: the `n` of its
        download name."""
        raw = self.files.find_one({"_id": _object_id(file_id)}, {"uploadDate": 1})
        if raw is None:
            return 1
        earlier = self.files.count_documents(
            {
                "metadata.job_id": job_id,
                "$or": [
                    {"uploadDate": {"$lt": raw["uploadDate"]}},
                    {"uploadDate": raw["uploadDate"], "_id": {"$lt": raw["_id"]}},
                ],
            }
        )
        return earlier + 1

    def usage_for_job(self, job_id: str) -> FileUsage:
        """How many files the job has and their bytes."""
        return self._usage({"metadata.job_id": job_id})

    def usage_for_jobs(self, job_ids: Sequence[str]) -> dict[str, FileUsage]:
        """usage_for_job of several jobs in one query (a listing's page)."""
        found: dict[str, FileUsage] = {job_id: {"count": 0, "bytes": 0} for job_id in job_ids}
        rows = self.files.aggregate(
            [
                {"$match": {"metadata.job_id": {"$in": list(job_ids)}}},
                {
                    "$group": {
                        "_id": "$metadata.job_id",
                        "count": {"$sum": 1},
                        "bytes": {"$sum": "$length"},
                    }
                },
            ]
        )
        for row in rows:
            found[str(row["_id"])] = {"count": int(row["count"]), "bytes": int(row["bytes"])}
        return found

    def usage_for_owner(self, owner_id: str) -> FileUsage:
        """How many files `owner_id`'s jobs store, and their bytes (GET /usage)."""
        return self._usage({"metadata.owner_id": owner_id})

    def bytes_for_owner(self, owner_id: str) -> int:
        """The bytes of every file of `owner_id`'s jobs (their storage; issue 25 meters it)."""
        return self._usage({"metadata.owner_id": owner_id})["bytes"]

    def _usage(self, match: dict[str, Any]) -> FileUsage:
        rows = list(
            self.files.aggregate(
                [
                    {"$match": match},
                    {"$group": {"_id": None, "count": {"$sum": 1}, "bytes": {"$sum": "$length"}}},
                ]
            )
        )
        if not rows:
            return {"count": 0, "bytes": 0}
        return {"count": int(rows[0]["count"]), "bytes": int(rows[0]["bytes"])}

    # ------------------------------------------------------------------ deleting

    def delete_for_job(self, job_id: str, keep_epoch: int | None = None) -> int:
        """Delete the job's files (with `keep_epoch`: those of other epochs, i.e. of runs
        before a reset); how many."""
        query: dict[str, Any] = {"metadata.job_id": job_id}
        if keep_epoch is not None:
            query["metadata.epoch"] = {"$ne": keep_epoch}
        return self._delete_where(query)

    def delete_run(self, job_id: str, run_id: str) -> int:
        """Delete what one run of the job stored (a run that lost the job); how many."""
        return self._delete_where({"metadata.job_id": job_id, "metadata.run_id": run_id})

    def _delete_where(self, query: dict[str, Any]) -> int:
        ids = [raw["_id"] for raw in self.files.find(query, {"_id": 1})]
        if not ids:
            return 0
        # the files documents first: a file is never listed once its bytes start to go
        self.files.delete_many({"_id": {"$in": ids}})
        self.chunks.delete_many({"files_id": {"$in": ids}})
        return len(ids)

    def _delete(self, file_id: Any) -> None:
        self.files.delete_one({"_id": file_id})
        self.chunks.delete_many({"files_id": file_id})
