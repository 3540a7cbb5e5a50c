"""The `spider` of an `engine: "spider"` job: its shape, the Scrapy settings a job may pass, and
the check that the owner's project, version and spider exist (POST /jobs, schedule.json).

    spider: {project, version (None: the latest when the job starts, as Scrapyd does), name,
             args: {name: value}, settings: {NAME: value}}
"""

from __future__ import annotations

import json
import re
from typing import Any

from pymongo.database import Database

from shared.eggs import EggStore, name_problem

MAX_ARGS = 100
MAX_ARG_CHARS = 10_000
MAX_SETTINGS_BYTES = 64 * 1024
SPIDER_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")
ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")

# Settings a job may pass: politeness, throughput, what a crawl follows and how it logs. The
# rest (pipelines, middlewares, extensions, handlers, the reactor, feeds, memory, telnet…) is
# refused: those would bypass the item sink, the target policy or the limits, or run code.
SETTINGS_ALLOWED = frozenset(
    {
        "AUTOTHROTTLE_ENABLED",
        "AUTOTHROTTLE_START_DELAY",
        "AUTOTHROTTLE_MAX_DELAY",
        "AUTOTHROTTLE_TARGET_CONCURRENCY",
        "AUTOTHROTTLE_DEBUG",
        "CLOSESPIDER_ERRORCOUNT",
        "CLOSESPIDER_ITEMCOUNT",
        "CLOSESPIDER_PAGECOUNT",
        "CLOSESPIDER_TIMEOUT",
        "CONCURRENT_ITEMS",
        "CONCURRENT_REQUESTS",
        "CONCURRENT_REQUESTS_PER_DOMAIN",
        "CONCURRENT_REQUESTS_PER_IP",
        "COOKIES_ENABLED",
        "DEFAULT_REQUEST_HEADERS",
        "DEPTH_LIMIT",
        "DEPTH_PRIORITY",
        "DEPTH_STATS_VERBOSE",
        "DOWNLOAD_DELAY",
        "DOWNLOAD_TIMEOUT",
        "DOWNLOAD_MAXSIZE",
        "DOWNLOAD_WARNSIZE",
        "DNS_TIMEOUT",
        "HTTPERROR_ALLOWED_CODES",
        "HTTPERROR_ALLOW_ALL",
        "LOG_LEVEL",
        "RANDOMIZE_DOWNLOAD_DELAY",
        "REDIRECT_ENABLED",
        "REDIRECT_MAX_TIMES",
        "REFERER_ENABLED",
        "RETRY_ENABLED",
        "RETRY_HTTP_CODES",
        "RETRY_TIMES",
        "ROBOTSTXT_OBEY",
        "URLLENGTH_LIMIT",
        "USER_AGENT",
    }
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SpiderSpecError(ValueError):
    """A job's `spider` names something the owner does not have; `field` says which part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def setting_problem(name: Any, value: Any) -> str | None:
    """Why a job may not pass Scrapy setting `name` = `value`, or None."""
    if not isinstance(name, str) or name not in SETTINGS_ALLOWED:
        return (
            f"{name} cannot be set by a job: allowed are the settings of politeness, throughput "
            "and logging (" + ", ".join(sorted(SETTINGS_ALLOWED)) + ")"
        )
    if name == "LOG_LEVEL" and str(value).upper() not in LOG_LEVELS:
        return f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}"
    if isinstance(value, bool) or value is None or isinstance(value, (int, float, str)):
        return None
    if isinstance(value, (dict, list)) and name in (
        "DEFAULT_REQUEST_HEADERS",
        "HTTPERROR_ALLOWED_CODES",
        "RETRY_HTTP_CODES",
    ):
        return None
    return f"{name}: unsupported value {type(value).__name__}"


def shape_problems(spider: dict[str, Any]) -> dict[str, list[str]]:
    """What is wrong with a `spider` object on its own (names, sizes, settings), by field."""
    errors: dict[str, list[str]] = {}
    for field in ("project", "version"):
        value = spider.get(field)
        if value is None and field == "version":
            continue
        problem = name_problem(value, field)
        if problem:
            errors[field] = [problem]
    name = spider.get("name")
    if not isinstance(name, str) or not SPIDER_NAME.match(name):
        errors["name"] = ["name must be a spider name (letters, digits, '_', '.', '-')"]
    args = spider.get("args") or {}
    if not isinstance(args, dict) or len(args) > MAX_ARGS:
        errors["args"] = [f"args must be an object of at most {MAX_ARGS} entries"]
    else:
        bad = [
            str(k)[:100]
            for k, v in args.items()
            if not ARG_NAME.match(str(k))
            or not isinstance(v, (str, int, float, bool))
            or len(str(v)) > MAX_ARG_CHARS
        ]
        if bad:
            errors["args"] = [
                f"args {', '.join(bad[:5])}: names are identifiers, values strings, numbers or "
                f"booleans of at most {MAX_ARG_CHARS} characters"
            ]
    settings = spider.get("settings") or {}
    if not isinstance(settings, dict):
        errors["settings"] = ["settings must be an object"]
    else:
        found = [p for p in (setting_problem(k, v) for k, v in settings.items()) if p]
        if len(json.dumps(settings, default=str)) > MAX_SETTINGS_BYTES:
            found.append(f"settings are larger than {MAX_SETTINGS_BYTES} bytes")
        if found:
            errors["settings"] = found
    return errors


def job_url(spider: dict[str, Any]) -> str:
    """What a spider job shows as its `url`: where its items come from, by name."""
    return f"spider://{spider['project']}/{spider['name']}"


def check(
    db: Database, owner_id: str, spider: dict[str, Any], list_spiders: Any, timeout: float
) -> dict[str, Any]:
    """Check that the owner has the project, the version (or any, for the latest) and a spider
    of that name in it; `list_spiders(egg, timeout=)` lists an egg's spiders once per version
    (remembered with the egg). Raises SpiderSpecError; returns the version checked."""
    store = EggStore(db)
    project, version, name = spider["project"], spider.get("version"), spider["name"]
    versions = store.versions(owner_id, project)
    if not versions:
        raise SpiderSpecError("project", f"you have no project {project!r} deployed")
    chosen = version or versions[-1]
    if chosen not in versions:
        raise SpiderSpecError(
            "version", f"project {project!r} has no version {chosen!r} (has {', '.join(versions)})"
        )
    names = store.known_spiders(owner_id, project, chosen)
    if names is None:
        egg = store.get(owner_id, project, chosen)
        if egg is None:
            raise SpiderSpecError("version", f"version {chosen!r} of {project!r} was just deleted")
        try:
            names = list_spiders(egg.data, timeout=timeout)
        except Exception as exc:  # the user's egg failed to load: say why
            raise SpiderSpecError(
                "project", f"the spiders of {project} {chosen} could not be listed: {exc}"
            ) from None
        store.remember_spiders(owner_id, project, chosen, names)
    if name not in names:
        raise SpiderSpecError(
            "name",
            f"project {project!r} version {chosen!r} has no spider {name!r} "
            f"(has {', '.join(names) or 'none'})",
        )
    return {"version": chosen, "spiders": names}
