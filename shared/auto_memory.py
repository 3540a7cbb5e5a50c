"""What `auto` learned per site: the engine a host and path pattern needs, with an expiry.

A site is its host (with port) and the first segment of the start URL's path, so
`shop.example/js/*` and `shop.example/catalog/*` can differ. The API reads it to send a new
`auto` job straight to the right queue; workers write it when they decide, and forget it when
the remembered engine finds nothing on the first page (the next job measures again).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from pymongo.database import Database

from shared.jobs import now
from shared.jobspec import AutoDecision

COLLECTION = "auto_sites"


def site_of(url: str) -> tuple[str, str]:
    """(host[:port], path pattern) of a start URL: `/js/catalog/page/2` → `/js/*`."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    segments = (parts.path or "/").split("/")
    pattern = f"/{segments[1]}/*" if len(segments) > 2 and segments[1] else "/*"
    return host, pattern


def site_key(url: str) -> str:
    host, pattern = site_of(url)
    return host + pattern


class AutoMemory:
    """The `auto_sites` collection; `days` = 0 turns the memory off."""

    def __init__(self, db: Database, days: float = 7.0) -> None:
        self.sites = db[COLLECTION]
        self.days = days

    @classmethod
    def from_settings(cls, db: Database, settings: Any) -> AutoMemory:
        return cls(db, settings.auto_memory_days)

    def recall(self, url: str) -> dict[str, Any] | None:
        """The unexpired decision for `url`'s site, or None."""
        if self.days <= 0:
            return None
        return self.sites.find_one({"_id": site_key(url), "expires_at": {"$gt": now()}})

    def remember(self, url: str, decision: AutoDecision, job_id: str) -> None:
        """Store `decision` ({engine, reason, static_items, rendered_items}) for `url`'s site."""
        if self.days <= 0:
            return
        host, pattern = site_of(url)
        moment = now()
        self.sites.update_one(
            {"_id": host + pattern},
            {
                "$set": {
                    "host": host,
                    "pattern": pattern,
                    "engine": decision["engine"],
                    "reason": decision["reason"],
                    "static_items": decision.get("static_items"),
                    "rendered_items": decision.get("rendered_items"),
                    "decided_at": moment,
                    "expires_at": moment + timedelta(days=self.days),
                    "last_job_id": job_id,
                },
                "$inc": {"decisions": 1},
            },
            upsert=True,
        )

    def used(self, url: str, job_id: str) -> None:
        """A job followed the remembered decision (counted for the admin view)."""
        if self.days > 0:
            self.sites.update_one(
                {"_id": site_key(url)}, {"$inc": {"uses": 1}, "$set": {"last_job_id": job_id}}
            )

    def forget(self, url: str) -> None:
        """The remembered engine found nothing: measure again on the next job."""
        self.sites.delete_one({"_id": site_key(url)})

    def listing(self, limit: int = 100, skip: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Unexpired decisions, most recent first, and their number."""
        query = {"expires_at": {"$gt": now()}}
        docs = list(self.sites.find(query).sort("decided_at", -1).skip(skip).limit(limit))
        return docs, self.sites.count_documents(query)


def learned_decision(doc: dict[str, Any]) -> AutoDecision:
    """A job's `auto_decision` taken from the memory record `doc`."""
    return {
        "engine": doc["engine"],
        "reason": f"learned for {doc['_id']}: {doc['reason']}",
        "static_items": doc.get("static_items"),
        "rendered_items": doc.get("rendered_items"),
        "learned": True,
        "site": doc["_id"],
    }
