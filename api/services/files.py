"""A job's files for the API: list them and read one back; only the job's owner may."""

from __future__ import annotations

from typing import Any

import gridfs

from api.services import db
from shared.errors import NotFound
from shared.files import FileUsage, JobFiles, StoredFile, download_name
from shared.users import UserDoc


def repo() -> JobFiles:
    return JobFiles(db())


def _own_job(job_id: str, user: UserDoc) -> None:
    """The job's files are its owner's alone (an admin's too only for their own jobs: a
    screenshot shows what the page showed that user, logged in maybe); others get 404."""
    if db().jobs.find_one({"_id": job_id, "owner_id": user["_id"]}, {"_id": 1}) is None:
        raise NotFound("Job not found")


def page(job_id: str, user: UserDoc, skip: int, limit: int) -> dict[str, Any]:
    _own_job(job_id, user)
    total, found = repo().list(job_id, skip, limit)
    return {"total": total, "files": found}


def usage(job_id: str) -> FileUsage:
    return repo().usage_for_job(job_id)


def open_file(job_id: str, file_id: str, user: UserDoc) -> tuple[gridfs.GridOut, StoredFile, str]:
    """(stream, file, download name) of one of the job's files."""
    _own_job(job_id, user)
    files = repo()
    found = files.get(job_id, file_id)
    stream = files.open(job_id, file_id) if found is not None else None
    if found is None or stream is None:
        raise NotFound("File not found")
    name = download_name(found["url"], found["kind"], files.position(job_id, file_id))
    return stream, found, name
