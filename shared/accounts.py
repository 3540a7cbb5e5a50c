"""Accounts as every process sees them: roles, case-insensitive names, who is still active.

A username is unique whatever its case (`SecAdmin` and `secadmin` are one account): each user
document carries `username_key`, the name lower-cased, under a unique index, and e-mails are
stored lower-cased under theirs. Workers and the scheduler ask `is_deactivated` before they act
for a user, so a deactivated account's schedules, webhooks and queued jobs stop with it.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.users import UserRepository

logger = logging.getLogger(__name__)

ROLES = ("user", "deployer", "admin")
DEACTIVATED = "the owner's account is deactivated"
DEACTIVATED_ERROR = {"type": "account_deactivated", "message": DEACTIVATED}
SUSPENDED = "owner_inactive"  # a schedule's `suspended` while its owner is deactivated


def key_of(name: str) -> str:
    """The form a username or e-mail is unique and looked up in (ASCII usernames, so lower())."""
    return name.strip().lower()


def is_deactivated(db: Database, user_id: Any) -> bool:
    """Whether an admin deactivated this user (one read by _id: callers ask once per action).
    Accounts are never deleted, so an owner that is not stored is not one of ours to stop."""
    if user_id is None:
        return False
    found = UserRepository(db).get(user_id, ["active"])
    return found is not None and found.get("active", True) is False


def find_by_login(db: Database, typed: str) -> dict[str, Any] | None:
    """The account a login names by username (any case) or e-mail."""
    users = UserRepository(db)
    key = key_of(typed)
    found = users.by_key(key)
    if found is None and "@" in key:
        found = users.by_email(key)
    if found is None:
        # a name left apart by the migration (it clashed with an older account's)
        found = users.by_exact_name(typed.strip())
    return found


def migrate(db: Database) -> None:
    """Give every user a `username_key` and a lower-case e-mail, under unique indexes.

    Idempotent and cheap when done (one indexed read). Of users whose names differ only in
    case, the oldest keeps the name's key; a later one gets a key of its own (`name#id`, so
    the unique index holds) and still logs in by its exact spelling; the clash is logged."""
    users = UserRepository(db)
    users.ensure_indexes()  # the unique username_key first: the tries below rely on it
    for user in users.without_key():
        key = key_of(str(user["username"]))
        email = user.get("email")
        tries: list[dict[str, Any]] = [
            {"username_key": key},
            {"username_key": f"{key}#{user['_id']}"},
        ]
        if isinstance(email, str) and email != key_of(email):
            tries.insert(0, {"username_key": key, "email": key_of(email)})
        for fields in tries:
            try:
                users.set(user["_id"], fields)
                break
            except DuplicateKeyError:
                continue
        if fields["username_key"] != key:
            logger.warning(
                "user %s: username %r differs only in case from an older account's; it logs "
                "in by its exact spelling only",
                user["_id"],
                user["username"],
            )
