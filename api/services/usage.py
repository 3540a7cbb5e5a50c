"""Usage and quotas for the API: the caller's month, the admin's tables (shared/usage.py)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from api.services import db, settings
from shared import jobs, usage
from shared.errors import ValidationFailed
from shared.users import UserDoc

MAX_DAYS = 366


def mine(user: UserDoc) -> dict[str, Any]:
    """GET /usage: the caller's usage this month against its quotas."""
    owner = str(user["_id"])
    moment = jobs.now()
    start, end = usage.month_of(moment)
    month = usage.UsageStore(db()).month(owner, moment)
    stored = usage.bytes_stored(db(), owner)
    return {
        "period": {"start": start, "end": end},
        **month,
        "bytes_stored": stored["total"],
        "files": stored["files"],
        "running_jobs": usage.running_jobs(db(), owner),
        "quotas": usage.quotas_of(user, settings()).as_dict(),
    }


def table(group_by: str, date_from: date | None, date_to: date | None) -> dict[str, Any]:
    """GET /admin/usage: everyone's usage over days, per user or per day."""
    today = jobs.now().date()
    date_to = date_to or today
    date_from = date_from or date_to.replace(day=1)
    if date_from > date_to:
        raise ValidationFailed("Invalid input: date_from", {"date_from": ["after date_to"]})
    if date_to - date_from > timedelta(days=MAX_DAYS):
        raise ValidationFailed(
            "Invalid input: date_from", {"date_from": [f"at most {MAX_DAYS} days before date_to"]}
        )
    grouped = usage.UsageStore(db()).totals(None, date_from, date_to, group_by)
    total = dict.fromkeys(usage.FIELDS, 0.0)
    for row in grouped.values():
        for field in usage.FIELDS:
            total[field] += row[field]
    if group_by == "user":
        names = {
            str(u["_id"]): u.get("username")
            for u in db().users.find({"_id": {"$in": list(grouped)}}, {"username": 1})
        }
        rows = [
            {"user_id": key, "username": names.get(key), **row}
            for key, row in sorted(grouped.items(), key=lambda kv: -kv[1]["pages"])
        ]
    else:
        rows = [{"day": key, **row} for key, row in sorted(grouped.items())]
    return {
        "group_by": group_by,
        "date_from": date_from,
        "date_to": date_to,
        "usage": rows,
        "total": total,
    }


def with_usage(users: list[UserDoc]) -> list[dict[str, Any]]:
    """Users as GET /admin/users lists them: with their quotas and this month's usage."""
    month = usage.UsageStore(db()).month_by_user(jobs.now())
    empty = dict.fromkeys(usage.FIELDS, 0)
    return [
        {
            **user,
            "quotas": usage.quotas_of(user, settings()).as_dict(),
            "usage": month.get(str(user["_id"]), empty),
        }
        for user in users
    ]
