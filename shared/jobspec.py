"""A job's crawl configuration: defaults, limits and the URL rules both API and engines apply."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict, cast
from urllib.parse import urlsplit

from shared.actions import actions_problems, element_selector_problem
from shared.schemes import scheme_problem
from shared.sessions import CookieSpec, LoginConfig

WAIT_UNTIL = ("load", "domcontentloaded", "networkidle", "commit")
WaitUntil = Literal["load", "domcontentloaded", "networkidle", "commit"]


class JobConfig(TypedDict):
    """A job's `config` with every default filled in (resolve_config): what engines read.
    Stored and sent as the plain JSON object it is; this only names its keys' types."""

    item_selector: str | None
    follow_links: bool
    link_selector: str | None
    max_pages: int
    max_depth: int | None
    wait_for: str | None
    wait_until: WaitUntil
    scroll: int
    timeout_seconds: int
    obey_robots: bool
    download_delay: float
    concurrency: int
    headers: dict[str, str]
    proxy: str
    include_patterns: list[str] | None
    exclude_patterns: list[str] | None
    allowed_domains: list[str] | None
    sitemap: bool
    output: list[str] | None
    actions: list[dict[str, Any]] | None
    next_click: str | None
    login: LoginConfig | None  # log in once in the browser, then crawl with that session
    cookies: list[CookieSpec] | None  # a session the user already has


class FirstPage(TypedDict):
    """`auto`: what a job's first page gave one engine (the job's `auto_probe` when the static
    engine hands it to the browser, to compare with)."""

    url: str
    items: int  # items with at least one value
    values: int  # field values in all
    has_scripts: bool


class AutoDecision(TypedDict):
    """`auto`: the engine chosen for a job and why (the job's `auto_decision`, the site's
    memory record)."""

    engine: str  # "scrapy" or "playwright"
    reason: str
    static_items: int | None
    rendered_items: int | None
    learned: NotRequired[bool]  # taken from the site's memory, not measured by this job
    site: NotRequired[str]


DEFAULT_CONFIG: JobConfig = {
    "item_selector": None,
    "follow_links": False,
    "link_selector": None,
    "max_pages": 100,
    "max_depth": None,  # None: only max_pages bounds the crawl
    "wait_for": None,
    "wait_until": "load",
    "scroll": 0,
    "timeout_seconds": 300,
    "obey_robots": True,
    "download_delay": 0.0,
    "concurrency": 8,
    "headers": {},
    "proxy": "none",
    "include_patterns": None,  # globs: followed links must match one
    "exclude_patterns": None,  # globs: followed links matching one are dropped
    "allowed_domains": None,  # followed links stay on these hosts (and their subdomains)
    "sitemap": False,  # the start URLs are sitemaps (or sitemap indexes) listing the pages
    "output": None,  # page content formats (markdown, text, html) and files (screenshot, pdf)
    "actions": None,  # browser steps run on each start page before extraction (shared/actions.py)
    "next_click": None,  # pagination by clicking this selector after each page is extracted
    "login": None,
    "cookies": None,
}

OUTPUT_FORMATS = ("markdown", "text", "html")  # page content: one item per page
FILE_OUTPUTS = ("screenshot", "pdf")  # files of the job (shared/files.py), browser only
OUTPUTS = OUTPUT_FORMATS + FILE_OUTPUTS
MAX_PATTERNS = 50  # per list: include_patterns, exclude_patterns, allowed_domains
MAX_PATTERN_LENGTH = 500
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

# (minimum, maximum) of numeric options. For max_pages and timeout_seconds the maximum is only
# the default of its setting (MAX_PAGES_CAP, MAX_TIMEOUT_SECONDS), which is the real bound.
BOUNDS: dict[str, tuple[float, float]] = {
    "max_pages": (1, 10_000),
    "max_depth": (0, 10_000),
    "scroll": (0, 200),
    "timeout_seconds": (1, 3_600),
    "download_delay": (0, 60),
    "concurrency": (1, 32),
}


def url_problem(url: Any) -> str | None:
    """Why `url` cannot be crawled, or None when it is an absolute http(s) URL with a host."""
    if not isinstance(url, str) or not url.strip():
        return "must be a non-empty string"
    if len(url) > 2048:
        return "longer than 2048 characters"
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        return f"malformed URL: {exc}"
    refused = scheme_problem(url)
    if refused is not None:
        return refused
    if not parts.hostname:
        return "URL has no host"
    if any(ch.isspace() for ch in url.strip()):
        return "URL contains whitespace"
    return None


def key_problem(key: Any) -> str | None:
    """Why `key` cannot name an entry of a user-supplied map (selectors, headers), or None.

    Such keys become field names of stored documents (a selector's name is a field of every
    item): MongoDB refuses a NUL in them, and `$` or `.` would read as operators and paths."""
    if not isinstance(key, str):
        return "must be a string"
    if "\0" in key:
        return "must not contain a NUL character"
    if key.startswith("$"):
        return "must not start with $"
    if "." in key:
        return "must not contain a dot (.)"
    return None


def pattern_problem(pattern: Any) -> str | None:
    """Why `pattern` is not a usable URL glob, or None."""
    if not isinstance(pattern, str) or not pattern.strip():
        return "must be a non-empty string"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"longer than {MAX_PATTERN_LENGTH} characters"
    if any(ch.isspace() for ch in pattern):
        return "contains whitespace"
    return None


def domain_problem(domain: Any) -> str | None:
    """Why `domain` is not a host name (or IP address) a crawl can be kept on, or None."""
    if not isinstance(domain, str) or not domain.strip():
        return "must be a non-empty string"
    name = domain.strip().lower().rstrip(".")
    if len(name) > 253 or "/" in name or ":" in name:
        return "must be a host name such as example.com (no scheme, port or path)"
    if not all(_HOST_LABEL.match(label) for label in name.split(".")):
        return "must be a host name such as example.com (no scheme, port or path)"
    return None


def browser_steps_problems(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Problems of a config's `actions` and `next_click`, as API error fields
    (`actions.2`: the third step; the messages count steps from 1). The engine checks a stored
    job the same way before it runs a step."""
    found: dict[str, list[str]] = {}
    for index, problems in actions_problems(config.get("actions")).items():
        found["actions" if index < 0 else f"actions.{index}"] = problems
    next_click = config.get("next_click")
    problem = None if next_click is None else element_selector_problem(next_click)
    if problem:
        found["next_click"] = [f"Not a usable selector: {problem}."]
    return found


def content_formats(config: Mapping[str, Any]) -> list[str]:
    """The page content formats a job's `output` asks for (markdown, text, html)."""
    return [f for f in OUTPUT_FORMATS if f in (config.get("output") or ())]


def file_outputs(config: Mapping[str, Any]) -> list[str]:
    """The files a job's `output` asks for per page (screenshot, pdf)."""
    return [f for f in FILE_OUTPUTS if f in (config.get("output") or ())]


def browser_reasons(config: Mapping[str, Any]) -> list[str]:
    """What in a job's config only the browser can do: an `auto` job with any of it runs in
    the browser from the start (and a `scrapy` job may not ask for it)."""
    wanted = file_outputs(config)
    return [f"{' and '.join(wanted)} output"] if wanted else []


MAX_COOKIES = 50
MAX_LOGIN_FIELDS = 20


def needs_browser_login(config: Mapping[str, Any] | None) -> bool:
    """Whether a job logs in (in the browser, whatever engine crawls)."""
    login = (config or {}).get("login")
    return isinstance(login, Mapping) and bool(login.get("url"))


def resolve_config(config: dict[str, Any] | None) -> JobConfig:
    """The job's config (as stored) with every default filled in."""
    resolved: dict[str, Any] = dict(DEFAULT_CONFIG)
    resolved["headers"] = {}
    for key, value in (config or {}).items():
        if value is not None or key in ("max_depth", "item_selector", "link_selector"):
            resolved[key] = value
    return cast(JobConfig, resolved)


@dataclass(frozen=True)
class JobSpec:
    """What an engine needs to run one job: no database, no queue."""

    job_id: str
    urls: list[str]
    selectors: dict[str, str]
    config: JobConfig = field(default_factory=lambda: resolve_config(None))
    max_items: int = 1_000_000
    max_page_bytes: int = 10_485_760
    max_items_per_page: int = 1_000
    max_field_bytes: int = 65_536
    user_agent: str = "ScrapeMaster"
    spider: dict[str, Any] | None = None  # engine spider: {project, version, name, args, …}

    @classmethod
    def from_job(cls, job: Mapping[str, Any], **limits: Any) -> JobSpec:
        """The spec of `job` (a stored job document or a preview's body); `limits`: the
        settings' caps (max_items, max_page_bytes, ...) and user_agent."""
        return cls(
            job_id=str(job["_id"]),
            urls=list(job.get("urls") or [job["url"]]),
            selectors=dict(job.get("selectors") or {}),
            config=resolve_config(job.get("config")),
            spider=dict(job["spider"]) if job.get("spider") else None,
            **limits,
        )
