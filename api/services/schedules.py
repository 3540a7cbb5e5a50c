"""Schedules for the API: CRUD with validation, run now, history and changes."""

from __future__ import annotations

from typing import Any

from api.security import is_admin
from api.services import db, secrets, settings
from api.services.jobs import enqueue
from shared import accounts, changes, jobs, sessions
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.schedules import (
    ScheduleDoc,
    ScheduleError,
    ScheduleRepository,
    ScheduleRunDoc,
    check,
)
from shared.scheduling import Scheduler
from shared.users import UserDoc


def repo() -> ScheduleRepository:
    return ScheduleRepository(db())


def _owner(user: UserDoc) -> str | None:
    """Whose schedules `user` sees: an admin sees all, a user their own."""
    return None if is_admin(user) else user["_id"]


def _own(schedule_id: str, user: UserDoc) -> ScheduleDoc:
    found = repo().get(schedule_id, _owner(user))
    if found is None:
        raise NotFound(f"Schedule {schedule_id} not found")
    return found


def _check(cron: str, timezone: str) -> None:
    try:
        check(cron, timezone, settings().schedule_min_interval_seconds, jobs.now())
    except ScheduleError as exc:
        raise ValidationFailed(exc.message, errors={exc.field: [exc.message]}) from exc


def create(user: UserDoc, body: dict[str, Any]) -> ScheduleDoc:
    _check(body["cron"], body["timezone"])
    limit = settings().max_schedules_per_user
    if repo().count(user["_id"]) >= limit:
        raise Conflict(f"At most {limit} schedules per user (MAX_SCHEDULES_PER_USER)")
    body = {**body, "job": secrets.sealed_body(body["job"])}
    return repo().create(user["_id"], body, jobs.now())


def list_of(user: UserDoc) -> list[ScheduleDoc]:
    return repo().of_owner(_owner(user))


def get(schedule_id: str, user: UserDoc) -> ScheduleDoc:
    return _own(schedule_id, user)


def update(schedule_id: str, user: UserDoc, changes_: dict[str, Any]) -> ScheduleDoc:
    schedule = _own(schedule_id, user)
    if not changes_:
        return schedule
    if {"cron", "timezone"} & changes_.keys():
        _check(
            changes_.get("cron", schedule["cron"]), changes_.get("timezone", schedule["timezone"])
        )
    if "job" in changes_:
        stored = schedule["job"].get("config")
        changes_ = {**changes_, "job": secrets.sealed_body(changes_["job"], stored)}
        before = secrets.opened(stored).get("login")
        if secrets.opened(changes_["job"]["config"]).get("login") != before:
            sessions.forget(db(), schedule["_id"])  # another login: its kept session goes
    updated = repo().update(schedule, changes_, jobs.now())
    if updated is None:
        raise NotFound(f"Schedule {schedule_id} not found")
    return updated


def delete(schedule_id: str, user: UserDoc) -> None:
    """The schedule goes; its history and jobs stay."""
    repo().delete(_own(schedule_id, user)["_id"])


def run_now(schedule_id: str, user: UserDoc) -> dict[str, Any]:
    schedule = _own(schedule_id, user)
    if accounts.is_deactivated(db(), schedule["owner_id"]):  # an admin, for a deactivated owner
        raise Conflict(f"Not run: {accounts.DEACTIVATED}")
    run = Scheduler(db(), enqueue).run_now(schedule)
    return {"job_id": run["job_id"], "run_id": run["_id"], "status": "queued"}


def history(user: UserDoc, args: dict[str, Any]) -> dict[str, Any]:
    rows, total = repo().history(
        _owner(user), args.get("schedule_id"), args.get("status"), args["limit"], args["skip"]
    )
    return {"runs": rows, "total": total, "limit": args["limit"], "skip": args["skip"]}


def changes_of(schedule_id: str, user: UserDoc, args: dict[str, Any]) -> dict[str, Any]:
    """Changes of one run of a schedule (default: its newest compared run). The schedule may
    be deleted: its history stays readable."""
    owner = _owner(user)
    if args.get("run"):
        run = repo().run(args["run"], owner)
        if run is None or run["schedule_id"] != schedule_id:
            raise NotFound(f"Run {args['run']} of schedule {schedule_id} not found")
    else:
        run = next(
            repo().newest(
                {"schedule_id": schedule_id},
                lambda r: (
                    r.get("changes") is not None and (owner is None or r.get("owner_id") == owner)
                ),
            ),
            None,
        )
        if run is None:
            if repo().get(schedule_id, owner) is None and not repo().runs.find_one(
                {"schedule_id": schedule_id, **({"owner_id": owner} if owner else {})}
            ):
                raise NotFound(f"Schedule {schedule_id} not found")
            return _page(None, [], 0, args)
    rows, total = changes.listing(db(), run["_id"], args.get("kind"), args["skip"], args["limit"])
    return _page(run, rows, total, args)


def _page(run: ScheduleRunDoc | None, rows: list, total: int, args: dict[str, Any]) -> dict:
    return {
        "run_id": run and run["_id"],
        "compared_with": run and run.get("compared_with"),
        "counts": run and run.get("changes"),
        "changes": rows,
        "total": total,
        "limit": args["limit"],
        "skip": args["skip"],
    }
