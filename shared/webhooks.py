"""Webhooks: subscriptions, signed deliveries and their attempts log, in MongoDB.

A delivery is one event for one receiver; each attempt of it is a row in `webhook_deliveries`
(what `GET /webhooks/{id}/deliveries` lists). Every attempt of a delivery carries the same
event id (`X-ScrapeMaster-Event-Id`), so receivers can drop duplicates, and a signature
`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` (the stdlib hmac), so they can
refuse forgeries and replays. Sending is the `webhooks` queue's task (workers/tasks/webhooks.py).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared import accounts, events
from shared.jobs import now
from shared.users import UserRepository
from shared.windows import newest_first

SUBSCRIBABLE = (events.STARTED, events.COMPLETED, events.FAILED, events.CANCELLED, events.CHANGED)
DEFAULT_EVENTS = [events.STARTED, events.COMPLETED, events.FAILED, events.CANCELLED]
PING = "ping"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
JOB_HOOK = "job"  # webhook_id of deliveries to a job's own webhook_url


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The X-ScrapeMaster-Signature value of `body`."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """What a receiver does: the signature matches and is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, body, stamp).split("v1=", 1)[1]
    return abs(time.time() - stamp) <= tolerance and hmac.compare_digest(
        expected, parts.get("v1", "")
    )


def payload(event: dict[str, Any]) -> dict[str, Any]:
    """The body of a delivery, from an event object (API.md § Webhooks)."""
    data = event.get("data") or {}
    return {
        "id": event["id"],
        "event": event["type"],
        "job_id": event.get("job_id"),
        "status": data.get("status"),
        "items_scraped": data.get("items_scraped"),
        "pages_crawled": data.get("pages_crawled"),
        "error": data.get("error"),
        "timestamp": event.get("timestamp"),
        "schedule_id": data.get("schedule_id"),  # a scheduled job's schedule, else null
        **({"changes": data["changes"], "run_id": data.get("run_id")} if "changes" in data else {}),
    }


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(payload(event), separators=(",", ":"), default=str).encode()


class WebhookRepository:
    """Webhooks of users, account secrets and the deliveries log."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.hooks = db.webhooks
        self.deliveries = db.webhook_deliveries

    def create(self, owner_id: str, url: str, kinds: list[str], secret: str | None) -> dict:
        doc = {
            "_id": uuid.uuid4().hex,
            "owner_id": owner_id,
            "webhook_url": url,
            "events": list(dict.fromkeys(kinds or DEFAULT_EVENTS)),
            "secret": secret or new_secret(),
            "enabled": True,
            "created_at": now(),
        }
        self.hooks.insert_one(doc)
        return doc

    def get(self, hook_id: str, owner_id: str) -> dict | None:
        return self.hooks.find_one({"_id": hook_id, "owner_id": owner_id})

    def of_owner(self, owner_id: str) -> list[dict]:
        return list(self.hooks.find({"owner_id": owner_id}).sort("created_at", DESCENDING))

    def update(self, hook_id: str, owner_id: str, changes: dict[str, Any]) -> dict | None:
        return self.hooks.find_one_and_update(
            {"_id": hook_id, "owner_id": owner_id},
            {"$set": changes},
            return_document=ReturnDocument.AFTER,
        )

    def delete(self, hook_id: str, owner_id: str) -> bool:
        return bool(self.hooks.delete_one({"_id": hook_id, "owner_id": owner_id}).deleted_count)

    def account_secret(self, owner_id: str, rotate: bool = False) -> str:
        """The secret that signs deliveries to jobs' own webhook_url; made when first needed."""
        users = UserRepository(self.db)
        user = users.get(owner_id, ["webhook_secret"]) or {}
        if user.get("webhook_secret") and not rotate:
            return str(user["webhook_secret"])
        secret = new_secret()
        users.set(owner_id, {"webhook_secret": secret})
        return secret

    # -- deliveries --------------------------------------------------------------------------

    def targets(self, job: dict[str, Any], type_: str) -> list[tuple[str, str]]:
        """(webhook id, url) of every receiver of a `type_` event of `job`."""
        owner = job.get("owner_id")
        if accounts.is_deactivated(self.db, owner):
            return []  # a deactivated account's webhooks stop with it
        found = [
            (hook["_id"], hook["webhook_url"])
            for hook in self.hooks.find({"owner_id": owner, "enabled": True, "events": type_})
        ]
        if job.get("webhook_url") and type_ in events.TERMINAL:
            found.append((JOB_HOOK, job["webhook_url"]))
        return found

    def plan_once(
        self, job: dict[str, Any], event: dict[str, Any], key: str, targets: list[tuple[str, str]]
    ) -> list[str]:
        """Create the first attempt of every delivery of an outbox event (`key`,
        shared/outbox.py) to `targets`, idempotently: each delivery's id comes from the event
        key and the receiver, so planning it again (a publish repeated after a crash) adds
        nothing. The first attempts still pending, to be sent."""
        ids: list[str] = []
        owner = job.get("owner_id")
        for hook_id, url in targets:
            delivery_id = hashlib.blake2b(f"{key}:{hook_id}".encode(), digest_size=16).hexdigest()
            try:
                ids.append(self.first_attempt(hook_id, url, owner, event, delivery_id))
            except DuplicateKeyError:
                first = self.deliveries.find_one({"_id": f"{delivery_id}:1"}, {"state": 1}) or {}
                if first.get("state") == PENDING:  # planned, perhaps never sent: send again
                    ids.append(f"{delivery_id}:1")
        return ids

    def first_attempt(
        self,
        hook_id: str,
        url: str,
        owner: Any,
        event: dict[str, Any],
        delivery_id: str | None = None,
    ) -> str:
        """A new delivery of `event` to `url`: its first attempt, pending now."""
        delivery = {
            "webhook_id": hook_id,
            "owner_id": owner,
            "url": url,
            "event_id": event["id"],
            "event": event["type"],
            "job_id": event.get("job_id"),
            "body": body_of(event).decode(),
        }
        return self._again(delivery, delivery_id or uuid.uuid4().hex, 1, 0)

    def attempt(self, attempt_id: str) -> dict | None:
        return self.deliveries.find_one({"_id": attempt_id})

    def record(self, attempt_id: str, **fields: Any) -> None:
        self.deliveries.update_one({"_id": attempt_id}, {"$set": fields})

    def _again(self, previous: dict[str, Any], delivery_id: str, number: int, delay: float) -> str:
        """A pending attempt `number` of `delivery_id`, with `previous`'s event and body."""
        attempt_id = f"{delivery_id}:{number}"
        self.deliveries.insert_one(
            {
                **previous,
                "_id": attempt_id,
                "delivery_id": delivery_id,
                "attempt": number,
                "state": PENDING,
                "status_code": None,
                "error": None,
                "duration_ms": None,
                "timestamp": now() + timedelta(seconds=delay),
                "next_retry_at": None,
            }
        )
        return attempt_id

    def next_attempt(self, previous: dict[str, Any], delay: float) -> str:
        """The retry of `previous`, due after `delay` seconds; same event id and body."""
        return self._again(previous, previous["delivery_id"], int(previous["attempt"]) + 1, delay)

    def redeliver(self, previous: dict[str, Any]) -> str:
        """A new delivery (a fresh attempt count) of the same event, asked for by its owner."""
        return self._again(previous, uuid.uuid4().hex, 1, 0)

    def count(self, owner_id: str) -> int:
        return self.hooks.count_documents({"owner_id": owner_id})

    def log(self, hook: dict[str, Any], limit: int = 100) -> list[dict]:
        """The newest `limit` attempts to `hook` (a webhook's document), newest first, read
        in windows of (webhook_id, timestamp): a log of 100,000 attempts costs what 100 do.
        A pending retry's timestamp is when it is due: those come first, then the past."""
        base, at = {"webhook_id": hook["_id"]}, now()

        def mine(attempt: dict[str, Any]) -> bool:
            return attempt.get("owner_id") == hook["owner_id"]

        due = [a for a in self.deliveries.find({**base, "timestamp": {"$gt": at}}) if mine(a)]
        due.sort(key=lambda a: (a["timestamp"], a["_id"]), reverse=True)
        past = newest_first(
            self.deliveries,
            base,
            "timestamp",
            newest=at,
            floor=hook["created_at"],
            window=timedelta(hours=1),
            keep=mine,
        )
        return list(itertools.islice(itertools.chain(due, past), limit))

    def prune(self, before: datetime) -> int:
        """Delete the attempts older than `before` (retention); a pending retry is kept: it
        is still due. How many went."""
        old = {"timestamp": {"$lt": before}, "state": {"$ne": PENDING}}
        return int(self.deliveries.delete_many(old).deleted_count)

    def secret_for(self, attempt: dict[str, Any]) -> str:
        if attempt["webhook_id"] == JOB_HOOK:
            return self.account_secret(attempt["owner_id"])
        hook = self.hooks.find_one({"_id": attempt["webhook_id"]}, {"secret": 1}) or {}
        return str(hook.get("secret") or "")
