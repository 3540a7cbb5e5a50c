"""Scrapyd's webservice, answered from ScrapeMaster's eggs and jobs (api/blueprints/scrapyd.py).

Projects and their eggs belong to the user who deployed them (shared/eggs.py); a scheduled
spider run is a job with `engine: "spider"`, made by the same code as POST /jobs, and its
Scrapyd `jobid` is the job's id. Each function takes the request's parameters and the caller
and returns Scrapyd's answer without `status` and `node_name` (the blueprint adds them), or
raises ScrapydError / a shared.errors domain error.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from datetime import datetime
from io import BytesIO
from typing import Any

from pymongo.errors import DuplicateKeyError

from api.schemas import check_job
from api.services import db, settings
from api.services import jobs as job_service
from shared import jobs
from shared.accounts import ROLES
from shared.eggs import EggError, EggStore, name_problem
from shared.errors import Conflict, DomainError, Forbidden, NotFound
from shared.jobs import JobDoc
from shared.spider_sandbox import SandboxError
from shared.spider_sandbox import list_spiders as sandbox_list_spiders
from shared.users import UserDoc

DEPLOY_ROLES = ("deployer", "admin")
assert set(DEPLOY_ROLES) <= set(ROLES)
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # a `jobid` of one's own
FINISHED_LISTED = 100  # Scrapyd keeps the last 100 finished jobs (finished_to_keep)
WAITING_LISTED = 1000  # pending and running jobs listed at most, oldest first
SPIDER_FIELDS = ("project", "version", "name", "args", "settings")


class ScrapydError(DomainError):
    """A Scrapyd error answer: `{"status": "error", "message": detail}` with `status`."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.status = status


def _missing(name: str) -> ScrapydError:
    return ScrapydError(f"'{name}' parameter is required")


def required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise _missing(name)
    return value


def _named(kind: str, value: str) -> str:
    problem = name_problem(value, kind)
    if problem:
        raise ScrapydError(f"{kind} {value!r} is invalid: {problem}")
    return value


def store() -> EggStore:
    return EggStore.from_settings(db(), settings())


def _project(user: UserDoc, project: str) -> str:
    """`project` when the caller has it; Scrapyd's "project 'x' not found" otherwise (another
    user's project is not found either)."""
    if project not in store().projects(user["_id"]):
        raise ScrapydError(f"project '{project}' not found", 404)
    return project


def _version(user: UserDoc, project: str, version: str | None) -> str:
    """`version` of the project, or its newest when None."""
    versions = store().versions(user["_id"], project)
    if version is None:
        if not versions:
            raise ScrapydError(f"project '{project}' not found", 404)
        return versions[-1]
    if version not in versions:
        raise ScrapydError(f"version '{version}' not found", 404)
    return version


def may_deploy(user: UserDoc) -> None:
    if user.get("role") not in DEPLOY_ROLES:
        raise Forbidden(
            "Deploying needs the role deployer or admin; ask an administrator "
            "(PATCH /api/v1/admin/users/{id} with role deployer)"
        )


def _spiders_of(egg: bytes) -> list[str]:
    """The egg's spiders, listed in the sandbox (a subprocess with a time limit)."""
    try:
        return sandbox_list_spiders(
            egg, timeout=settings().spider_list_timeout_seconds, settings=settings()
        )
    except SandboxError as exc:
        raise ScrapydError(f"the project's spiders could not be listed: {exc}") from None


def spiders(user: UserDoc, project: str, version: str | None) -> list[str]:
    """The spiders of a version (the newest by default), as `scrapy list` names them."""
    _project(user, project)
    version = _version(user, project, version)
    known = store().known_spiders(user["_id"], project, version)
    if known is None:  # listed once per version, then kept with the egg (shared/eggs.py)
        egg = store().get(user["_id"], project, version)
        if egg is None:  # deleted meanwhile
            raise ScrapydError(f"version '{version}' not found", 404)
        known = _spiders_of(egg.data)
        store().remember_spiders(user["_id"], project, version, known)
    return known


# -- the endpoints -------------------------------------------------------------------------


def daemon_status(user: UserDoc) -> dict[str, Any]:
    """The caller's spider jobs by state (Scrapyd counts the whole daemon's)."""
    mine = {"owner_id": user["_id"], "engine": "spider"}
    count = db().jobs.count_documents
    return {
        "pending": count({**mine, "status": jobs.PENDING}),
        "running": count({**mine, "status": jobs.RUNNING}),
        "finished": count({**mine, "status": {"$in": sorted(jobs.TERMINAL)}}),
    }


def add_version(user: UserDoc, project: str, version: str, egg: bytes) -> dict[str, Any]:
    """Store an egg as a version of the caller's project, once its spiders list."""
    may_deploy(user)
    _named("project", project)
    _named("version", version)
    limit = store().max_bytes
    if limit is not None and len(egg) > limit:
        raise ScrapydError(f"the egg is {len(egg)} bytes, more than SPIDER_MAX_EGG_MB allows", 413)
    if not zipfile.is_zipfile(BytesIO(egg)):
        raise ScrapydError("egg is not a ZIP file (if using curl, use egg=@path not egg=path)")
    found = _spiders_of(egg)  # an egg whose spiders cannot be listed is refused, not stored
    try:
        store().add(user["_id"], project, version, egg)
    except EggError as exc:
        raise ScrapydError(str(exc)) from None
    store().remember_spiders(user["_id"], project, version, found)
    return {"project": project, "version": version, "spiders": len(found)}


def schedule(user: UserDoc, params: Mapping[str, str], settings_: list[str]) -> dict[str, Any]:
    """A spider job from schedule.json's fields, made as POST /jobs makes one."""
    project = _project(user, required(params, "project"))
    name = required(params, "spider")
    version = _version(user, project, params.get("_version") or None)
    jobid = params.get("jobid") or None
    if jobid is not None and not JOB_ID.match(jobid):
        raise ScrapydError(
            f"jobid {jobid!r} is invalid: 1 to 100 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    priority = _priority(params.get("priority"))
    chosen: dict[str, str] = {}
    for setting in settings_:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise ScrapydError(f"setting {setting!r} is invalid: use setting=NAME=VALUE")
        chosen[key] = value
    if name not in spiders(user, project, version):
        raise ScrapydError(f"spider '{name}' not found", 404)
    reserved = {"project", "spider", "_version", "jobid", "priority", "setting"}
    args = {key: value for key, value in params.items() if key not in reserved}
    spec = check_job(
        {
            "engine": "spider",
            "priority": priority,
            "spider": {
                "project": project,
                "version": version,
                "name": name,
                "args": args,
                "settings": chosen,
            },
        }
    )
    try:
        job = job_service.submit(spec, user, job_id=jobid)
    except DuplicateKeyError:
        raise ScrapydError(f"job '{jobid}' already exists", 409) from None
    return {"jobid": job["_id"]}


def _priority(raw: str | None) -> int:
    """Scrapyd's priority (a float, 0 by default, higher first) on our 0-9 (5 normal)."""
    if raw is None or raw == "":
        return jobs.DEFAULT_PRIORITY
    try:
        value = float(raw)
    except ValueError:
        raise ScrapydError(f"priority is invalid: {raw!r} is not a number") from None
    if value != value:  # NaN
        raise ScrapydError("priority is invalid: nan")
    return int(max(0, min(9, jobs.DEFAULT_PRIORITY + round(max(-9.0, min(9.0, value))))))


def _spider_job(user: UserDoc, job_id: str, project: str | None) -> JobDoc | None:
    query: dict[str, Any] = {"_id": job_id, "owner_id": user["_id"], "engine": "spider"}
    if project is not None:
        query["spider.project"] = project
    return db().jobs.find_one(query)


def cancel(user: UserDoc, project: str, job_id: str) -> dict[str, Any]:
    """Cancel the caller's pending or running spider job; `prevstate` as Scrapyd's."""
    _project(user, project)
    job = _spider_job(user, job_id, project)
    if job is None or job["status"] not in (jobs.PENDING, jobs.RUNNING):
        return {"prevstate": None}
    try:
        job_service.cancel(job_id, user)
    except (Conflict, NotFound):  # it ended meanwhile
        return {"prevstate": None}
    return {"prevstate": job["status"]}


def _state(status: str) -> str:
    return "finished" if status in jobs.TERMINAL else status


def status(user: UserDoc, job_id: str, project: str | None) -> dict[str, Any]:
    if project is not None:
        _project(user, project)
    job = _spider_job(user, job_id, project)
    return {"currstate": None if job is None else _state(job["status"])}


def list_projects(user: UserDoc) -> dict[str, Any]:
    return {"projects": store().projects(user["_id"])}


def list_versions(user: UserDoc, project: str) -> dict[str, Any]:
    """Oldest first, the newest last (Scrapyd answers [] for an unknown project)."""
    return {"versions": store().versions(user["_id"], project)}


def _time(value: datetime | None) -> str | None:
    """As Scrapyd writes times: str() of a naive datetime (ours are UTC)."""
    return None if value is None else str(value.replace(tzinfo=None))


def _spider(job: Mapping[str, Any]) -> dict[str, Any]:
    found = job.get("spider") or {}
    return {key: found.get(key) for key in SPIDER_FIELDS}


def _listed(job: Mapping[str, Any]) -> dict[str, Any]:
    """What every listjobs.json entry starts with."""
    spider = _spider(job)
    return {
        "id": job["_id"],
        "project": spider["project"],
        "spider": spider["name"],
        "version": spider["version"],
    }


def _urls(job: Mapping[str, Any]) -> dict[str, str]:
    return {
        "log_url": f"/api/v1/jobs/{job['_id']}/logs",
        "items_url": f"/api/v1/results/{job['_id']}",
    }


def list_jobs(user: UserDoc, project: str | None) -> dict[str, Any]:
    """The caller's spider jobs as Scrapyd lists them: pending, running (oldest first), and
    the last FINISHED_LISTED finished (newest first)."""
    query: dict[str, Any] = {"owner_id": user["_id"], "engine": "spider"}
    if project is not None:
        _project(user, project)
        query["spider.project"] = project

    def find(status: Any, order: int, limit: int) -> list[JobDoc]:
        cursor = db().jobs.find({**query, "status": status}).sort("created_at", order)
        return list(cursor.limit(limit))

    pending = [
        {
            **_listed(job),
            "settings": _spider(job)["settings"] or {},
            "args": _spider(job)["args"] or {},
        }
        for job in find(jobs.PENDING, 1, WAITING_LISTED)
    ]
    running = [
        {
            **_listed(job),
            "pid": None,  # the run's process is on a worker host, not this one
            "start_time": _time(job.get("started_at")),
            **_urls(job),
        }
        for job in find(jobs.RUNNING, 1, WAITING_LISTED)
    ]
    finished = [
        {
            **_listed(job),
            "start_time": _time(job.get("started_at") or job.get("created_at")),
            "end_time": _time(job.get("completed_at")),
            "outcome": job["status"],  # ours: completed, failed or cancelled
            **_urls(job),
        }
        for job in find({"$in": sorted(jobs.TERMINAL)}, -1, FINISHED_LISTED)
    ]
    return {"pending": pending, "running": running, "finished": finished}


def delete_version(user: UserDoc, project: str, version: str) -> dict[str, Any]:
    may_deploy(user)
    _project(user, project)
    if not store().delete_version(user["_id"], project, version):
        raise ScrapydError(f"version '{version}' not found", 404)
    return {}


def delete_project(user: UserDoc, project: str) -> dict[str, Any]:
    may_deploy(user)
    _project(user, project)
    store().delete_project(user["_id"], project)
    return {}
