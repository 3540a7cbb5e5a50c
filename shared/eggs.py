"""Users' Scrapy project eggs in MongoDB GridFS, versioned per owner and project.

One GridFS file per (owner, project, version) in the bucket `eggs`; its `metadata` carries
`{owner_id, project, version, uploaded_at}`. Versions are ordered as Scrapyd orders them
(scrapyd/eggstorage.py `sorted_versions`): by `packaging.version.Version` when every version of
the project parses as one, else as plain strings; the latest is the last. Uploading a version
that exists replaces it (Scrapyd does the same).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import gridfs
from packaging.version import InvalidVersion, Version
from pymongo.database import Database

BUCKET = "eggs"
# Scrapyd refuses project and version names that could leave its eggs directory; ours are
# keys of stored documents and parts of file names, so the same conservative alphabet.
NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


class EggError(ValueError):
    """An egg that cannot be stored: a bad project or version name, or too big."""


@dataclass(frozen=True)
class Egg:
    """One stored version of a project, with its bytes."""

    owner_id: str
    project: str
    version: str
    size: int
    uploaded_at: datetime
    data: bytes


def name_problem(name: Any, what: str = "project") -> str | None:
    """Why `name` cannot name a project (or version), or None."""
    if not isinstance(name, str) or not NAME.match(name):
        return f"{what} must be 1 to 100 letters, digits, '_', '.' or '-'"
    if name in (".", ".."):
        return f"{what} must not be '.' or '..'"
    return None


def sorted_versions(versions: list[str]) -> list[str]:
    """Scrapyd's order: PEP 440 when every version parses, else lexical; latest last."""
    try:
        return sorted(versions, key=Version)
    except InvalidVersion:
        return sorted(versions)


class EggStore:
    """Eggs of every owner; each method is scoped to one owner (nobody sees another's)."""

    def __init__(self, database: Database, max_bytes: int | None = None) -> None:
        self.db = database
        self.max_bytes = max_bytes
        self.files = database[f"{BUCKET}.files"]
        self.bucket = gridfs.GridFSBucket(database, bucket_name=BUCKET)

    @classmethod
    def from_settings(cls, database: Database, settings: Any) -> EggStore:
        return cls(database, max_bytes=int(settings.spider_max_egg_mb) * 1024 * 1024)

    def ensure_indexes(self) -> None:
        self.files.create_index(
            [("metadata.owner_id", 1), ("metadata.project", 1), ("metadata.version", 1)]
        )

    def _query(
        self, owner_id: str, project: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"metadata.owner_id": str(owner_id)}
        if project is not None:
            query["metadata.project"] = project
        if version is not None:
            query["metadata.version"] = version
        return query

    def add(self, owner_id: str, project: str, version: str, data: bytes) -> dict[str, Any]:
        """Store `data` as `version` of `project` (replacing that version if it exists).
        Returns `{owner_id, project, version, size, uploaded_at}`."""
        for value, what in ((project, "project"), (version, "version")):
            problem = name_problem(value, what)
            if problem:
                raise EggError(problem)
        if not data:
            raise EggError("the egg is empty")
        if self.max_bytes is not None and len(data) > self.max_bytes:
            raise EggError(
                f"the egg is {len(data)} bytes, more than SPIDER_MAX_EGG_MB allows "
                f"({self.max_bytes} bytes)"
            )
        old = [
            f["_id"] for f in self.files.find(self._query(owner_id, project, version), {"_id": 1})
        ]
        meta = {
            "owner_id": str(owner_id),
            "project": project,
            "version": version,
            "uploaded_at": datetime.now(UTC),
        }
        self.bucket.upload_from_stream(f"{owner_id}/{project}/{version}.egg", data, metadata=meta)
        for file_id in old:  # after the new one is in: a reader never finds neither
            self._delete_file(file_id)
        return {**meta, "size": len(data)}

    def get(self, owner_id: str, project: str, version: str | None = None) -> Egg | None:
        """The egg of `version` (None: the latest as Scrapyd orders versions), or None."""
        if version is None:
            known = self.versions(owner_id, project)
            if not known:
                return None
            version = known[-1]
        found = list(
            self.files.find(self._query(owner_id, project, version)).sort("uploadDate", -1).limit(1)
        )
        if not found:
            return None
        doc = found[0]
        try:
            data = self.bucket.open_download_stream(doc["_id"]).read()
        except gridfs.errors.NoFile:
            return None  # deleted between the two reads
        meta = doc.get("metadata") or {}
        return Egg(
            owner_id=str(owner_id),
            project=project,
            version=version,
            size=len(data),
            uploaded_at=meta.get("uploaded_at") or doc.get("uploadDate"),
            data=data,
        )

    def versions(self, owner_id: str, project: str) -> list[str]:
        """The project's versions, oldest first as Scrapyd orders them ([] when unknown)."""
        names = {
            f["metadata"]["version"]
            for f in self.files.find(self._query(owner_id, project), {"metadata.version": 1})
        }
        return sorted_versions(list(names))

    def projects(self, owner_id: str) -> list[str]:
        """The owner's projects, sorted by name."""
        names = {
            f["metadata"]["project"]
            for f in self.files.find(self._query(owner_id), {"metadata.project": 1})
        }
        return sorted(names)

    def delete_version(self, owner_id: str, project: str, version: str) -> bool:
        """Delete one version; False when it did not exist."""
        ids = [
            f["_id"] for f in self.files.find(self._query(owner_id, project, version), {"_id": 1})
        ]
        for file_id in ids:
            self._delete_file(file_id)
        return bool(ids)

    def delete_project(self, owner_id: str, project: str) -> int:
        """Delete every version of a project; how many were deleted (0: unknown project)."""
        ids = self._ids(owner_id, project)
        for file_id in ids:
            self._delete_file(file_id)
        return len(ids)

    def known_spiders(self, owner_id: str, project: str, version: str) -> list[str] | None:
        """The spiders listed for this version before (`remember_spiders`), or None."""
        doc = self.files.find_one(
            self._query(owner_id, project, version), {"metadata.spiders": 1}, sort=[("_id", -1)]
        )
        spiders = ((doc or {}).get("metadata") or {}).get("spiders")
        return [str(s) for s in spiders] if isinstance(spiders, list) else None

    def remember_spiders(self, owner_id: str, project: str, version: str, names: list[str]) -> None:
        """Keep the spider names of a version with its egg (listing runs the egg's code)."""
        self.files.update_many(
            self._query(owner_id, project, version), {"$set": {"metadata.spiders": list(names)}}
        )

    def bytes_for_owner(self, owner_id: str) -> int:
        """Bytes of all the owner's eggs (for storage quotas)."""
        rows = list(
            self.files.aggregate(
                [
                    {"$match": self._query(owner_id)},
                    {"$group": {"_id": None, "n": {"$sum": "$length"}}},
                ]
            )
        )
        return int(rows[0]["n"]) if rows else 0

    def _ids(self, owner_id: str, project: str, version: str | None = None) -> list[Any]:
        return [
            f["_id"] for f in self.files.find(self._query(owner_id, project, version), {"_id": 1})
        ]

    def _delete_file(self, file_id: Any) -> None:
        with contextlib.suppress(gridfs.errors.NoFile):  # deleted by a concurrent call
            self.bucket.delete(file_id)
