"""Users and their API keys in MongoDB: the only module that reads or writes their collections.

The rules about accounts (case-insensitive names, roles, who counts as deactivated) live in
shared/accounts.py; here are the queries they, the API and the workers run. Callers get plain
documents back, as from every other repository (shared/jobs.py, shared/schedules.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypedDict

from pymongo import DESCENDING
from pymongo.database import Database

# never listed to an admin: the password's hash and the secret signing the user's webhooks
PRIVATE_FIELDS = {"password_hash": 0, "webhook_secret": 0}


class UserDoc(TypedDict, total=False):
    """A document of the `users` collection (a projection, or a user stored by an earlier
    version, lacks some fields: `active` missing means active)."""

    _id: str
    username: str  # as typed at registration
    username_key: str  # shared/accounts.py key_of(username): unique, case-insensitive
    email: str  # key_of(email)
    password_hash: str  # PRIVATE_FIELDS
    role: str  # "user" or "admin"
    active: bool  # False: deactivated (shared/accounts.py)
    created_at: datetime
    last_login: datetime | None
    webhook_secret: str  # PRIVATE_FIELDS: signs deliveries to jobs' own webhook_url
    quotas: dict[str, int]  # the user's own quotas over QUOTA_* (shared/usage.py)


class ApiKeyDoc(TypedDict, total=False):
    """A document of the `api_keys` collection: a key's SHA-256, never the key."""

    _id: str
    user_id: str
    name: str
    prefix: str  # the key's first characters, to tell keys apart
    key_hash: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class UserRepository:
    """The `users` collection: accounts, their login names, roles and account-wide secrets."""

    def __init__(self, db: Database) -> None:
        self.users = db.users

    def ensure_indexes(self) -> None:
        self.users.create_index("username", unique=True)
        self.users.create_index("email", unique=True)
        # sparse: a process of the previous version may still insert a user without the key
        self.users.create_index("username_key", unique=True, sparse=True)

    def insert(self, user: UserDoc) -> None:
        """Store a new user; DuplicateKeyError when its username key or e-mail is taken."""
        self.users.insert_one(user)

    def get(self, user_id: str, fields: list[str] | None = None) -> UserDoc | None:
        """The user with this id (only `fields` of it, when given), or None."""
        projection = dict.fromkeys(fields, 1) if fields else None
        return self.users.find_one({"_id": user_id}, projection)

    def by_key(self, username_key: str) -> UserDoc | None:
        return self.users.find_one({"username_key": username_key})

    def by_email(self, email: str) -> UserDoc | None:
        return self.users.find_one({"email": email})

    def by_exact_name(self, username: str) -> UserDoc | None:
        return self.users.find_one({"username": username})

    def page(self, part: str | None, skip: int, limit: int) -> tuple[int, list[UserDoc]]:
        """The total and a page of users, newest first, whose username key or e-mail contains
        `part` (already lower-cased), without their private fields."""
        query: dict[str, Any] = {}
        if part:
            match = {"$regex": re.escape(part)}
            query = {"$or": [{"username_key": match}, {"email": match}]}
        found = (
            self.users.find(query, PRIVATE_FIELDS)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(skip)
            .limit(limit)
        )
        return self.users.count_documents(query), list(found)

    def other_active_admins(self, user_id: str) -> int:
        """How many active admins there are besides this user."""
        return self.users.count_documents(
            {"role": "admin", "active": {"$ne": False}, "_id": {"$ne": user_id}}
        )

    def set(self, user_id: str, fields: dict[str, Any]) -> None:
        """Set these fields of the user (DuplicateKeyError when a unique one is taken)."""
        self.users.update_one({"_id": user_id}, {"$set": fields})

    def upsert_admin(self, username_key: str, changes: UserDoc, new: UserDoc) -> None:
        """Apply `changes` to the user with this username key, created from `new` if none."""
        self.users.update_one(
            {"username_key": username_key}, {"$set": changes, "$setOnInsert": new}, upsert=True
        )

    def without_key(self) -> Iterator[UserDoc]:
        """Users stored before usernames had a key, oldest first (for the migration)."""
        return self.users.find({"username_key": {"$exists": False}}).sort("created_at", 1)


class ApiKeyRepository:
    """The `api_keys` collection: one row per key, holding its SHA-256, never the key."""

    def __init__(self, db: Database) -> None:
        self.keys = db.api_keys

    def ensure_indexes(self) -> None:
        self.keys.create_index("key_hash", unique=True)
        self.keys.create_index("user_id")

    def insert(self, record: ApiKeyDoc) -> None:
        self.keys.insert_one(record)

    def usable(self, key_hash: str) -> ApiKeyDoc | None:
        """The key with this hash, unless it was revoked."""
        return self.keys.find_one({"key_hash": key_hash, "revoked": {"$ne": True}})

    def of_user(self, user_id: str) -> list[ApiKeyDoc]:
        """The user's keys that are not revoked, newest first."""
        return list(self.keys.find({"user_id": user_id, "revoked": False}).sort("created_at", -1))

    def delete(self, key_id: str, user_id: str) -> bool:
        """Delete the user's key; False when the user has no key of that id."""
        return bool(self.keys.delete_one({"_id": key_id, "user_id": user_id}).deleted_count)
