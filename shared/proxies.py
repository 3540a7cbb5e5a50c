"""The proxy pool: proxy records, ban rules, rotation and health checks over MongoDB."""

from __future__ import annotations

import re
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict
from urllib.parse import urlsplit

import requests
from pymongo import ReturnDocument
from pymongo.database import Database

from shared.jobs import now

ACTIVE = "active"
COOLDOWN = "cooldown"
BANNED = "banned"
PROXY_STATUSES = (ACTIVE, COOLDOWN, BANNED)
# SOCKS is not among them: Scrapy speaks HTTP to every proxy whatever its scheme (its download
# handler reads only the host and port), and Chromium cannot authenticate to a SOCKS proxy.
PROXY_SCHEMES = ("http", "https")
BAN_STATUSES = frozenset({403, 429})
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
NO_PROXIES = {
    "type": "no_proxies",
    "message": "every proxy in the pool is banned or cooling down",
}
_CAPTCHA = re.compile(
    r"<title>[^<]*captcha|g-recaptcha|h-captcha|hcaptcha\.com|cf-turnstile|challenge-platform",
    re.IGNORECASE,
)


def proxy_url_problem(url: Any) -> str | None:
    """Why `url` is not a usable proxy URL (http or https with host and port), or None."""
    if not isinstance(url, str) or not url.strip() or len(url) > 2048:
        return "must be a non-empty string of at most 2048 characters"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        return f"malformed URL: {exc}"
    if parts.scheme.startswith("socks"):
        return "SOCKS proxies are not supported (Scrapy speaks HTTP to every proxy); use http"
    if parts.scheme not in PROXY_SCHEMES:
        return "scheme must be http or https"
    if not parts.hostname:
        return "URL has no host"
    if port is None:
        return "URL has no port"
    if any(ch.isspace() for ch in url.strip()):
        return "URL contains whitespace"
    return None


def looks_like_captcha(text: str) -> bool:
    """Whether a page is a captcha or bot challenge (a ban signal), judged on its first 64 KB."""
    return bool(_CAPTCHA.search(text[:65_536]))


def is_ban(status: int, text: str = "") -> bool:
    """A response that says the target refuses this proxy: 403, 429 or a captcha page."""
    return status in BAN_STATUSES or looks_like_captcha(text)


def success_rate(doc: ProxyDoc) -> float | None:
    """Successes over all outcomes of one proxy, or None before its first use."""
    total = doc.get("success_count", 0) + doc.get("failure_count", 0)
    return round(doc.get("success_count", 0) / total, 4) if total else None


class ProxyDoc(TypedDict, total=False):
    """A document of the `proxies` collection (a projection holds only some fields)."""

    _id: str
    url: str
    status: str  # one of PROXY_STATUSES
    success_count: int
    failure_count: int
    ban_count: int
    consecutive_bans: int  # bans in a row: `ban_after` of them ban it for good
    avg_latency_ms: float | None
    cooldown_until: datetime | None
    last_error: str | None
    last_checked_at: datetime | None
    last_used_at: datetime  # NEVER before its first pick
    use_seq: int  # the pick counter when it was last picked: least recently used first
    created_at: datetime


class ProxyRepository:
    """Proxy records in collection `proxies`; status changes by conditional updates."""

    def __init__(
        self,
        db: Database,
        cooldown_seconds: float = 60,
        ban_after: int = 3,
        check_url: str = "",
        check_timeout: float = 5,
    ):
        self.db = db
        self.proxies = db.proxies
        self.cooldown_seconds = cooldown_seconds
        self.ban_after = ban_after
        self.check_url = check_url
        self.check_timeout = check_timeout

    @classmethod
    def from_settings(cls, db: Database, settings: Any) -> ProxyRepository:
        return cls(
            db,
            cooldown_seconds=settings.proxy_cooldown_seconds,
            ban_after=settings.proxy_ban_after,
            check_url=settings.proxy_check_url,
            check_timeout=settings.proxy_check_timeout_seconds,
        )

    # -- records ----------------------------------------------------------------------------
    def add(self, url: str) -> ProxyDoc | None:
        """A new active proxy, or None when `url` is already in the pool."""
        url = url.strip()
        if self.proxies.find_one({"url": url}, {"_id": 1}):
            return None
        doc: ProxyDoc = {
            "_id": uuid.uuid4().hex,
            "url": url,
            "status": ACTIVE,
            "success_count": 0,
            "failure_count": 0,
            "ban_count": 0,
            "consecutive_bans": 0,
            "avg_latency_ms": None,
            "cooldown_until": None,
            "last_error": None,
            "last_checked_at": None,
            "last_used_at": NEVER,
            "use_seq": 0,
            "created_at": now(),
        }
        self.proxies.insert_one(doc)
        return doc

    def get(self, proxy_id: str) -> ProxyDoc | None:
        return self.proxies.find_one({"_id": proxy_id})

    def all(self) -> list[ProxyDoc]:
        return list(self.proxies.find().sort("created_at", 1))

    def update(self, proxy_id: str, **fields: Any) -> ProxyDoc | None:
        """Change url and/or status; setting active clears the cool-down and the ban streak."""
        if fields.get("status") == ACTIVE:
            fields.update(cooldown_until=None, consecutive_bans=0)
        if not fields:
            return self.get(proxy_id)
        return self.proxies.find_one_and_update(
            {"_id": proxy_id}, {"$set": fields}, return_document=ReturnDocument.AFTER
        )

    def delete(self, proxy_id: str) -> bool:
        return self.proxies.delete_one({"_id": proxy_id}).deleted_count == 1

    # -- rotation ---------------------------------------------------------------------------
    def pick(self, exclude: list[str] | tuple[str, ...] = ()) -> ProxyDoc | None:
        """The least recently used usable proxy (active, or with its cool-down over), or None.

        Each pick stamps the proxy with the next number of a shared counter (`use_seq`), so the
        order is strict even when picks fall in the same millisecond (a timestamp would tie and
        hand out the same proxy again): concurrent requests spread over the pool.
        """
        moment = now()
        counter = self.db.counters.find_one_and_update(
            {"_id": "proxy_use"},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        seq = int((counter or {}).get("seq", 0))
        query: dict[str, Any] = {
            "$or": [
                {"status": ACTIVE},
                {"status": COOLDOWN, "cooldown_until": {"$lte": moment}},
            ]
        }
        if exclude:
            query["_id"] = {"$nin": list(exclude)}
        # A proxy whose cool-down is over is back on probation: active, ban streak kept.
        return self.proxies.find_one_and_update(
            query,
            {"$set": {"last_used_at": moment, "use_seq": seq, "status": ACTIVE}},
            sort=[("use_seq", 1), ("_id", 1)],
            return_document=ReturnDocument.AFTER,
        )

    def record_success(self, proxy_id: str, latency_ms: float) -> None:
        """One request relayed: count it, fold its latency into the average, end the ban streak."""
        doc = self.proxies.find_one(
            {"_id": proxy_id}, {"success_count": 1, "failure_count": 1, "avg_latency_ms": 1}
        )
        if doc is None:
            return
        previous = doc.get("avg_latency_ms")
        n = doc.get("success_count", 0)
        average = latency_ms if previous is None else (previous * n + latency_ms) / (n + 1)
        self.proxies.update_one(
            {"_id": proxy_id},
            {
                "$inc": {"success_count": 1},
                "$set": {"avg_latency_ms": round(average, 1), "consecutive_bans": 0},
            },
        )

    def record_failure(self, proxy_id: str, reason: str, ban: bool) -> ProxyDoc | None:
        """One failed request; a ban puts an active proxy on cool-down, or bans it for good
        after `ban_after` bans in a row. Returns the proxy afterwards."""
        self.proxies.update_one(
            {"_id": proxy_id}, {"$inc": {"failure_count": 1}, "$set": {"last_error": reason}}
        )
        doc = self.get(proxy_id)
        if not ban or doc is None or doc["status"] != ACTIVE:
            return doc  # requests in flight when it was cooled down count once, not again
        streak = int(doc.get("consecutive_bans", 0)) + 1
        fields: dict[str, Any] = {"consecutive_bans": streak}
        if streak >= self.ban_after:
            fields.update(status=BANNED, cooldown_until=None)
        else:
            wait = self.cooldown_seconds * 2 ** (streak - 1)
            fields.update(status=COOLDOWN, cooldown_until=now() + timedelta(seconds=wait))
        return self.proxies.find_one_and_update(
            {"_id": proxy_id, "status": ACTIVE, "consecutive_bans": doc.get("consecutive_bans", 0)},
            {"$set": fields, "$inc": {"ban_count": 1}},
            return_document=ReturnDocument.AFTER,
        ) or self.get(proxy_id)

    # -- health -----------------------------------------------------------------------------
    def probe(self, url: str) -> str | None:
        """None when the proxy works, else why not: a request through it to PROXY_CHECK_URL,
        or, when that is empty, a TCP connection to the proxy itself."""
        try:
            if self.check_url:
                answer = requests.get(
                    self.check_url,
                    proxies={"http": url, "https": url},
                    timeout=self.check_timeout,
                )
                if answer.status_code >= 400:
                    return f"check answered HTTP {answer.status_code}"
                return None
            parts = urlsplit(url)
            with socket.create_connection(
                (parts.hostname or "", parts.port or 0), timeout=self.check_timeout
            ):
                return None
        except (OSError, requests.RequestException) as exc:
            return f"check failed: {type(exc).__name__}: {exc}"[:500]

    def check(self) -> dict[str, int]:
        """Probe banned and cooling proxies; bring back the ones that work again."""
        recovered = still_down = 0
        for doc in self.proxies.find({"status": {"$in": [BANNED, COOLDOWN]}}):
            problem = self.probe(doc["url"])
            fields: dict[str, Any] = {"last_checked_at": now()}
            if problem is None:
                fields.update(status=ACTIVE, cooldown_until=None, consecutive_bans=0)
                self.proxies.update_one(
                    {"_id": doc["_id"], "status": doc["status"]}, {"$set": fields}
                )
                recovered += 1
            else:
                fields["last_error"] = problem
                self.proxies.update_one({"_id": doc["_id"]}, {"$set": fields})
                still_down += 1
        return {"recovered": recovered, "still_down": still_down}

    def summary(self) -> dict[str, Any]:
        """Counts and average success rate per status (GET /monitoring/proxies)."""
        by_status: dict[str, dict[str, Any]] = {
            s: {"count": 0, "avg_success_rate": None} for s in PROXY_STATUSES
        }
        rates: dict[str, list[float]] = {s: [] for s in PROXY_STATUSES}
        total = 0
        for doc in self.proxies.find({}, {"status": 1, "success_count": 1, "failure_count": 1}):
            status = doc.get("status", ACTIVE)
            if status not in by_status:
                continue
            total += 1
            by_status[status]["count"] += 1
            rate = success_rate(doc)
            if rate is not None:
                rates[status].append(rate)
        for status, values in rates.items():
            if values:
                by_status[status]["avg_success_rate"] = round(sum(values) / len(values), 4)
        return {"total_proxies": total, "by_status": by_status}
