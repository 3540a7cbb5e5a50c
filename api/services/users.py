"""The admin's user management: list, create, change role or active, and what follows from it.

Deactivating a user cuts it off: its tokens and API keys are refused (this process at once,
others within security.USER_CACHE_TTL), its open streams close at their next re-check
(security.STREAM_RECHECK_SECONDS), its pending and running jobs are cancelled with the reason,
and the scheduler, the webhook sender and the workers skip it (shared/accounts.py). Activating
it again restores its schedules from the next slot on.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from api import security
from api.services import auth, db, usage
from api.services import jobs as job_service
from shared import accounts, jobs
from shared.errors import Conflict, NotFound
from shared.jobs import JobError
from shared.schedules import ScheduleRepository
from shared.users import UserDoc, UserRepository

logger = logging.getLogger(__name__)


def list_users(skip: int, limit: int, q: str | None) -> dict[str, Any]:
    """A page of users, newest first; `q` matches part of a username or e-mail, in any case."""
    total, found = UserRepository(db()).page(accounts.key_of(q) if q else None, skip, limit)
    return {"total": total, "users": usage.with_usage(found)}


def create(body: dict[str, Any], actor: UserDoc) -> UserDoc:
    """An account made by an admin (the way in while REGISTRATION is closed)."""
    user = auth.register(body["username"], body["email"], body["password"], body["role"])
    logger.info("user %s (%s) created by %s", user["_id"], user["role"], actor["username"])
    return user


def _get(user_id: str) -> UserDoc:
    found = UserRepository(db()).get(user_id)
    if found is None:
        raise NotFound(f"User {user_id} not found")
    return found


def update(user_id: str, changes: dict[str, Any], actor: UserDoc) -> UserDoc:
    """Change a user's role and/or active flag, and carry out what that means."""
    user = _get(user_id)
    if "quotas" in changes:
        changes = {**changes, "quotas": _quotas(user, changes["quotas"])}
    current = {
        "role": user.get("role"),
        "active": user.get("active", True),
        "quotas": user.get("quotas") or {},
    }
    changed = {k: v for k, v in changes.items() if current.get(k) != v}
    if not changed:
        return usage.with_usage([user])[0]  # type: ignore[return-value]
    stays_admin = changes.get("role", user.get("role")) == "admin" and changes.get(
        "active", user.get("active", True)
    )
    users = UserRepository(db())
    leaves_admins = security.is_admin(user) and user.get("active", True) and not stays_admin
    if leaves_admins and not users.other_active_admins(user_id):
        raise Conflict("This is the last active admin: make another admin first")
    users.set(user_id, changed)
    security.forget_user(user_id)  # this process refuses at once; the others within the TTL
    logger.info("user %s changed by %s: %s", user_id, actor["username"], changed)
    if changed.get("active") is False:
        _cut_off(user_id, actor)
    elif changed.get("active") is True:
        resumed = ScheduleRepository(db()).resume_owner(user_id, jobs.now())
        logger.info("user %s active again: %d schedules resumed", user_id, resumed)
    # `changes`: role, active, quotas (AdminUserUpdate)
    return cast(UserDoc, usage.with_usage([cast(UserDoc, {**user, **changed})])[0])


def _quotas(user: UserDoc, given: dict[str, Any]) -> dict[str, int]:
    """The user's own quotas after a PATCH: a number sets one (0: unlimited), null removes
    it (the QUOTA_* default applies again), an absent one stays."""
    own = dict(user.get("quotas") or {})
    for name, value in given.items():
        if value is None:
            own.pop(name, None)
        else:
            own[name] = int(value)
    return own


def _cut_off(user_id: str, actor: UserDoc) -> None:
    """Cancel the deactivated user's pending and running jobs, saying why. (Streams, schedules,
    webhooks and workers check the account themselves.)"""
    cancelled = 0
    waiting = db().jobs.find(
        {"owner_id": user_id, "status": {"$in": [jobs.PENDING, jobs.RUNNING]}}, {"_id": 1}
    )
    for job in list(waiting):
        try:
            job_service.cancel(job["_id"], actor, error=JobError(**accounts.DEACTIVATED_ERROR))
            cancelled += 1
        except (Conflict, NotFound):
            continue  # it ended or went meanwhile
    logger.info("user %s deactivated: %d jobs cancelled", user_id, cancelled)
