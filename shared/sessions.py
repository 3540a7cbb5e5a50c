"""Sessions of jobs that log in or bring cookies: the cookies a crawl starts with, the session a
login hands from the browser to Scrapy, and the one a schedule keeps between its runs.

A session is a Playwright storage state, `{"cookies": [...], "origins": [...]}`: the browser
opens a context with it, the static engine seeds Scrapy's cookie jar with its cookies. At rest
(on a job, on a schedule) it is sealed whole (shared/vault.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NotRequired, TypedDict
from urllib.parse import urlsplit

from pymongo.database import Database

from shared.vault import Vault

SAME_SITE = ("Strict", "Lax", "None")


class LoginConfig(TypedDict):
    """`config.login` as the API stores it (field values sealed)."""

    url: str
    fields: dict[str, str]  # selector → value, filled in order
    submit: NotRequired[str | None]  # absent: Enter in the last field
    success_selector: NotRequired[str | None]  # absent: the first field must be gone


class CookieSpec(TypedDict, total=False):
    """One of `config.cookies` (value sealed at rest)."""

    name: str
    value: str
    domain: str  # absent: the host of the job's first URL; ".example.com": and its subdomains
    path: str
    expires: float  # Unix time; absent: a session cookie
    http_only: bool
    secure: bool
    same_site: str  # Strict | Lax | None


BrowserSession = dict[str, Any]  # a Playwright storage state: {cookies, origins}


def login_of(config: Mapping[str, Any] | None) -> LoginConfig | None:
    found = (config or {}).get("login")
    return found if isinstance(found, Mapping) and found.get("url") else None  # type: ignore[return-value]


def start_cookies(config: Mapping[str, Any], urls: list[str]) -> list[dict[str, Any]]:
    """`config.cookies` (in the clear) as Playwright storage-state cookies."""
    host = (urlsplit(urls[0]).hostname or "") if urls else ""
    found = []
    for cookie in config.get("cookies") or []:
        same_site = cookie.get("same_site") or "Lax"
        found.append(
            {
                "name": cookie["name"],
                "value": cookie["value"],
                "domain": cookie.get("domain") or host,
                "path": cookie.get("path") or "/",
                "expires": float(cookie.get("expires") or -1),
                "httpOnly": bool(cookie.get("http_only", False)),
                "secure": bool(cookie.get("secure", False)),
                "sameSite": same_site if same_site in SAME_SITE else "Lax",
            }
        )
    return found


def combined(cookies: list[dict[str, Any]], session: BrowserSession | None) -> BrowserSession:
    """The session a crawl starts with: a login's, then the job's own cookies over it."""
    base = dict(session or {"cookies": [], "origins": []})
    mine = {(c["name"], c["domain"], c["path"]) for c in cookies}
    kept = [
        c
        for c in base.get("cookies") or []
        if (c.get("name"), c.get("domain"), c.get("path")) not in mine
    ]
    return {"cookies": kept + cookies, "origins": list(base.get("origins") or [])}


# -- a schedule's kept session --------------------------------------------------------------


def kept(db: Database, vault: Vault, schedule_id: str) -> BrowserSession | None:
    """The session a schedule's earlier run logged in with, or None."""
    doc = db.schedules.find_one({"_id": schedule_id}, {"session": 1})
    sealed = ((doc or {}).get("session") or {}).get("state")
    return vault.open_json(sealed) if sealed else None


def keep(
    db: Database, vault: Vault, schedule_id: str, session: BrowserSession, now: datetime
) -> None:
    """Keep a fresh login's session for the schedule's next runs (sealed)."""
    db.schedules.update_one(
        {"_id": schedule_id},
        {
            "$set": {"session.state": vault.seal_json(session), "session.saved_at": now},
            "$inc": {"session.logins": 1},
        },
    )


def forget(db: Database, schedule_id: str) -> None:
    """Drop a schedule's kept session (its job body changed: perhaps the account too)."""
    db.schedules.update_one({"_id": schedule_id}, {"$unset": {"session": ""}})
