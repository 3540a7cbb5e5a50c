"""Marshmallow schemas: the request and response contract of API.md, also the OpenAPI spec."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import marshmallow as ma
from flask import current_app, g
from marshmallow import ValidationError, fields, validate, validates_schema

from api.errors import field_errors
from api.schemas_crawl import (
    AutoDecision,
    DomainName,
    NextClick,
    OutputFormats,
    actions_field,
    pattern_list,
)
from api.schemas_session import LoginSchema, MaskedConfig, cookie_list
from shared import jobs, spider_jobs
from shared.actions import browser_required
from shared.errors import ValidationFailed
from shared.jobspec import (
    BOUNDS,
    MAX_PATTERNS,
    WAIT_UNTIL,
    browser_reasons,
    content_formats,
    key_problem,
    url_problem,
)
from shared.proxies import PROXY_STATUSES, proxy_url_problem
from shared.selectors import compile_selector
from shared.targets import BlockedTarget, TargetPolicy, has_credentials, header_problem


def _settings():
    return current_app.config["SETTINGS"]


def _policy() -> TargetPolicy:
    found = current_app.extensions.get("scrapemaster_targets")
    if found is None:
        found = current_app.extensions["scrapemaster_targets"] = TargetPolicy.from_settings(
            _settings()
        )
    return found


class UTCDateTime(fields.Field):
    """ISO-8601 UTC with a trailing Z, milliseconds."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError("Not a valid ISO-8601 datetime.") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Priority(fields.Field):
    """low | normal | high, or an integer 0-9 (9 highest); loads as the integer."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        try:
            return jobs.normalize_priority(value)
        except (ValueError, TypeError):
            raise ValidationError("Must be one of low, normal, high or an integer 0-9.") from None

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return value


class HttpUrl(fields.String):
    """An absolute http(s) URL that the target policy does not refuse outright: no
    credentials, no literal private address (names are judged where they are connected to)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = url_problem(text)
        if problem:
            raise ValidationError(f"Not a valid URL: {problem}.")
        text = text.strip()
        if has_credentials(text):
            raise ValidationError(
                "Credentials in URLs are not accepted: send them in an Authorization header "
                "(config.headers)."
            )
        try:
            _policy().check_url(text)
        except BlockedTarget as exc:
            raise ValidationError(f"Blocked target: {exc}.") from None
        return text


class SelectorString(fields.String):
    """A CSS (with ::text / ::attr), XPath or jmespath: (JSON pages) selector that parses."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            compile_selector(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return text.strip()


def safe_keys(mapping: dict[str, Any]) -> None:
    """A user-supplied map's keys become stored field names: refuse NUL, a leading $ and dots."""
    problems = []
    for key in mapping:
        problem = key_problem(key)
        if problem:
            shown = repr(key) if len(key) <= 60 else repr(key[:60]) + "…"
            problems.append(f"Key {shown} {problem}.")
    if problems:
        raise ValidationError(problems)


def _bounded_int(name: str, **kwargs: Any) -> fields.Integer:
    low, high = BOUNDS[name]
    return fields.Integer(strict=True, validate=validate.Range(int(low), int(high)), **kwargs)


def _capped_int(name: str, setting: str, description: str) -> fields.Integer:
    """At least BOUNDS' minimum; the maximum is the setting (checked in within_settings), so
    raising the setting raises the bound."""
    low, default = BOUNDS[name]
    text = f"{description}; {int(low)} to {setting} (default {int(default)})"
    return fields.Integer(
        strict=True, validate=validate.Range(min=int(low)), metadata={"description": text}
    )


def config_conflicts(config: dict[str, Any]) -> dict[str, list[str]]:
    """Options of a job's config that cannot go together (a PATCH checks the config it merges
    into, through `check_job`)."""
    if content_formats(config) and config.get("item_selector"):
        return {
            "output": [
                "Page content output makes one item per page; it cannot be combined with "
                "item_selector."
            ]
        }
    return {}


class JobConfig(ma.Schema):
    item_selector = SelectorString(allow_none=True)
    follow_links = fields.Boolean()
    link_selector = SelectorString(allow_none=True)
    max_pages = _capped_int("max_pages", "MAX_PAGES_CAP", "pages fetched, hard cap")
    max_depth = _bounded_int("max_depth", allow_none=True)
    wait_for = SelectorString(allow_none=True, metadata={"description": "playwright only"})
    wait_until = fields.String(validate=validate.OneOf(WAIT_UNTIL))
    scroll = _bounded_int("scroll")
    timeout_seconds = _capped_int("timeout_seconds", "MAX_TIMEOUT_SECONDS", "the whole job")
    obey_robots = fields.Boolean()
    download_delay = fields.Float(validate=validate.Range(*BOUNDS["download_delay"]))
    concurrency = _bounded_int("concurrency")
    headers = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 200)),
        values=fields.String(validate=validate.Length(0, 4000)),
        validate=[validate.Length(max=50), safe_keys],
    )
    proxy = fields.String(validate=validate.Length(1, 2048))
    include_patterns = pattern_list("followed links must match one of these globs")
    exclude_patterns = pattern_list("followed links matching one of these globs are dropped")
    allowed_domains = fields.List(
        DomainName(),
        allow_none=True,
        validate=validate.Length(max=MAX_PATTERNS),
        metadata={"description": "followed links stay on these hosts and their subdomains"},
    )
    sitemap = fields.Boolean(
        metadata={"description": "the start URLs are sitemaps (or sitemap indexes)"}
    )
    output = OutputFormats(
        allow_none=True,
        metadata={
            "description": "each page's main content (markdown, text and/or html: one item per "
            "page) and files of each page (screenshot, pdf: browser only, GET /jobs/{id}/files)"
        },
    )
    actions = actions_field()
    next_click = NextClick(
        allow_none=True,
        metadata={"description": "pagination by clicking this element after each page"},
    )
    login = fields.Nested(
        LoginSchema,
        allow_none=True,
        metadata={"description": "log in once in the browser, then crawl with that session"},
    )
    cookies = cookie_list()

    @validates_schema
    def within_settings(self, data: dict[str, Any], **kwargs: Any) -> None:
        settings = _settings()
        errors: dict[str, Any] = config_conflicts(data)
        if data.get("login"):
            try:  # the login page is a target like any start URL
                data["login"]["url"] = HttpUrl().deserialize(data["login"]["url"])
            except ValidationError as exc:
                errors["login"] = {"url": exc.messages}
        if data.get("max_pages", 0) > settings.max_pages_cap:
            errors["max_pages"] = [f"Must be between 1 and {settings.max_pages_cap}."]
        if data.get("timeout_seconds", 0) > settings.max_timeout_seconds:
            errors["timeout_seconds"] = [f"Must be between 1 and {settings.max_timeout_seconds}."]
        proxy = data.get("proxy")
        if proxy is not None and proxy not in ("none", "pool"):
            problem = proxy_url_problem(proxy)
            user = g.get("user") or {}
            if problem:
                errors["proxy"] = [f"Must be none, pool or a proxy URL ({problem})."]
            elif user.get("role") != "admin" and not settings.allow_job_proxy_urls:
                # a proxy URL is a connection the target policy cannot see through
                errors["proxy"] = [
                    "Only an admin may route a job through a proxy URL; use pool "
                    "(the admin-managed proxies) or none (ALLOW_JOB_PROXY_URLS)."
                ]
        bad_headers = [p for p in map(header_problem, data.get("headers") or {}) if p]
        if bad_headers:
            errors["headers"] = bad_headers
        if errors:
            raise ValidationError(errors)


class SpiderSpec(ma.Schema):
    """engine spider: which of the caller's deployed spiders runs, and how."""

    project = fields.String(required=True, metadata={"example": "demo"})
    version = fields.String(
        allow_none=True, load_default=None, metadata={"description": "None: the latest"}
    )
    name = fields.String(required=True, metadata={"description": "the spider's name"})
    args = fields.Dict(load_default=dict, metadata={"description": "spider arguments (-a)"})
    settings = fields.Dict(
        load_default=dict, metadata={"description": "Scrapy settings: politeness and throughput"}
    )

    @validates_schema
    def well_formed(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors = spider_jobs.shape_problems(data)
        if errors:
            raise ValidationError(errors)


class JobCreate(ma.Schema):
    url = HttpUrl(metadata={"example": "http://127.0.0.1:8080/catalog/"})
    urls = fields.List(HttpUrl(), validate=validate.Length(min=1))
    engine = fields.String(load_default="auto", validate=validate.OneOf(jobs.ENGINES))
    priority = Priority(load_default=jobs.DEFAULT_PRIORITY)
    selectors = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 100)),
        values=SelectorString(),
        load_default=dict,
        validate=[validate.Length(max=100), safe_keys],
    )
    config = fields.Nested(JobConfig, load_default=dict)
    webhook_url = HttpUrl(allow_none=True)
    spider = fields.Nested(
        SpiderSpec, metadata={"description": "engine spider: the deployed spider to run"}
    )

    @validates_schema
    def has_url(self, data: dict[str, Any], partial: Any = False, **kwargs: Any) -> None:
        if data.get("engine") == "spider" or data.get("spider"):
            if not partial and data.get("engine") != "spider":
                raise ValidationError({"spider": ["Only a job with engine spider names a spider."]})
            if not partial and not data.get("spider"):
                raise ValidationError({"spider": ["Missing data for required field."]})
            return  # a spider finds its own pages: no url
        if not partial and not data.get("url") and not data.get("urls"):
            raise ValidationError({"url": ["Missing data for required field."]})
        limit = _settings().max_urls_per_job
        if len(data.get("urls") or []) > limit:
            raise ValidationError({"urls": [f"At most {limit} URLs per job."]})
        needs = browser_reasons(data.get("config") or {})
        if needs and data.get("engine") == "scrapy":
            raise ValidationError(
                {
                    "config": {
                        "output": [
                            f"{needs[0].capitalize()} needs the browser: use engine auto or "
                            "playwright."
                        ]
                    }
                }
            )
        steps = [n for n in browser_required(data.get("config")) if n != "login"]
        if steps and data.get("engine") == "scrapy":
            # a login runs in the browser for any engine; actions and clicks need its pages
            message = "{} needs the browser: use engine auto or playwright."
            raise ValidationError({"config": {n: [message.format(n)] for n in steps}})

    @ma.post_load
    def fill_url(self, data: dict[str, Any], partial: Any = False, **kwargs: Any) -> dict[str, Any]:
        if partial:
            return data  # a PATCH: the service merges it into the stored job first
        if data.get("spider"):
            data["url"] = spider_jobs.job_url(data["spider"])
            data["urls"] = [data["url"]]
            data["selectors"] = {}
            config = data.setdefault("config", {})
            # a spider's crawl is bounded by MAX_PAGES_CAP unless the job asks for fewer pages
            config.setdefault("max_pages", _settings().max_pages_cap)
            return data
        if not data.get("url"):
            data["url"] = data["urls"][0]
        if not data.get("urls"):
            data["urls"] = [data["url"]]
        return data


class JobUpdate(JobCreate):
    """What a PATCH/PUT of a pending job may change. Each field is checked by JobCreate's own
    rules here, and the job it makes is checked again as a whole (`check_job`)."""

    class Meta:
        exclude = ("engine", "webhook_url")

    def __init__(self, **kwargs: Any):
        # partial: absent fields stay absent (no load_default), none is required
        super().__init__(partial=True, **kwargs)


def check_job(body: dict[str, Any]) -> dict[str, Any]:
    """`body` loaded by the rules of POST /jobs; ValidationFailed naming every bad field.

    The one validation path of a job body: POST loads it through JobCreate, and a PATCH of a
    pending job checks the job it would make (stored body with the changes) through here."""
    try:
        return cast(dict[str, Any], JobCreate().load(body))
    except ValidationError as exc:
        errors = field_errors(exc.messages)
        raise ValidationFailed(f"Invalid input: {', '.join(sorted(errors))}", errors) from None


class JobError(ma.Schema):
    type = fields.String()
    message = fields.String()


class FileUsage(ma.Schema):
    count = fields.Integer()
    bytes = fields.Integer()


class JobOut(ma.Schema):
    id = fields.String(attribute="_id")
    url = fields.String()
    urls = fields.List(fields.String())
    engine = fields.String()
    engine_used = fields.String(allow_none=True)
    status = fields.String()
    priority = fields.Integer()
    progress = fields.Integer()
    items_scraped = fields.Integer()
    items_failed = fields.Integer()
    pages_crawled = fields.Integer()
    attempts = fields.Integer()
    run = fields.Integer(
        dump_default=1,
        metadata={"description": "1, then +1 on each retry or reset; events carry it as data.run"},
    )
    error = fields.Nested(JobError, allow_none=True)
    selectors = fields.Dict()
    config = MaskedConfig(metadata={"description": "as sent; secrets answered as ***"})
    webhook_url = fields.String(allow_none=True)
    owner_id = fields.String()
    created_at = UTCDateTime()
    started_at = UTCDateTime(allow_none=True)
    completed_at = UTCDateTime(allow_none=True)
    duration_seconds = fields.Float(allow_none=True)
    schedule_id = fields.String(
        allow_none=True, metadata={"description": "the schedule that started the job"}
    )
    spider = fields.Dict(
        allow_none=True,
        dump_default=None,
        metadata={"description": "engine spider: {project, version, name, args, settings}"},
    )
    auto_decision = fields.Nested(
        AutoDecision,
        allow_none=True,
        dump_default=None,
        metadata={"description": "engine auto: what it chose, and why"},
    )
    warnings = fields.List(
        fields.String(),
        dump_default=list,
        metadata={"description": "what the job could not do, e.g. selectors that matched nothing"},
    )
    files = fields.Nested(
        FileUsage,
        allow_none=True,
        dump_default=None,
        metadata={
            "description": "{count, bytes} of its screenshots and PDFs (GET /jobs/{id}; null "
            "in lists)"
        },
    )


MAX_SKIP = 1_000_000_000  # MongoDB takes 8-byte integers; a bigger skip answers 422, not 500


class JobListArgs(ma.Schema):
    skip = fields.Integer(load_default=0, validate=validate.Range(0, MAX_SKIP))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))
    page = fields.Integer(validate=validate.Range(1, MAX_SKIP // 100))
    per_page = fields.Integer(validate=validate.Range(1, 100))
    status = fields.String(validate=validate.OneOf(jobs.STATUSES))
    engine = fields.String(validate=validate.OneOf(jobs.ENGINES))
    schedule_id = fields.String(validate=validate.Length(1, 64))
    sort_by = fields.String(
        load_default="created_at", validate=validate.OneOf(["created_at", "status", "priority"])
    )
    sort_order = fields.String(load_default="desc", validate=validate.OneOf(["asc", "desc"]))
    after = fields.String(
        validate=validate.Length(1, 64),
        metadata={"description": "a job id: the page after it (keyset paging, any depth)"},
    )
    before = fields.String(
        validate=validate.Length(1, 64),
        metadata={"description": "a job id: the page before it"},
    )

    @ma.validates_schema
    def _one_cursor(self, data, **kwargs):
        if data.get("after") and data.get("before"):
            raise ma.ValidationError("give after or before, not both", "before")
        if (data.get("after") or data.get("before")) and data.get("sort_by", "created_at") != (
            "created_at"
        ):
            raise ma.ValidationError("cursors page in creation order only", "sort_by")


class BatchDelete(ma.Schema):
    job_ids = fields.List(fields.String(), required=True, validate=validate.Length(1, 1000))


class BatchDeleteOut(ma.Schema):
    deleted = fields.Integer()
    failed = fields.Integer()
    errors = fields.List(fields.Dict())


class JobStats(ma.Schema):
    total = fields.Integer()
    pending = fields.Integer()
    running = fields.Integer()
    completed = fields.Integer()
    failed = fields.Integer()
    cancelled = fields.Integer()


class LogArgs(ma.Schema):
    level = fields.String(
        validate=validate.OneOf(
            ["DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"]
        )
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class LogLine(ma.Schema):
    timestamp = UTCDateTime()
    level = fields.String()
    message = fields.String()


class LogsOut(ma.Schema):
    logs = fields.List(fields.Nested(LogLine))


class RetriedOut(ma.Schema):
    retried = fields.Integer()


class ResultArgs(ma.Schema):
    skip = fields.Integer(load_default=0, validate=validate.Range(0, MAX_SKIP))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class ResultOut(ma.Schema):
    job_id = fields.String()
    url = fields.String()
    data = fields.Dict()
    scraped_at = UTCDateTime()


class ResultsPage(ma.Schema):
    job_id = fields.String()
    total = fields.Integer()
    skip = fields.Integer()
    limit = fields.Integer()
    results = fields.List(fields.Nested(ResultOut))


class ExportArgs(ma.Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv", "jsonl"]))
    csv_formulas = fields.String(
        load_default="escape",
        validate=validate.OneOf(["escape", "raw"]),
        metadata={
            "description": "csv: `escape` (default) prefixes with ' a cell that starts with "
            "=, +, -, @, tab or carriage return, so a spreadsheet shows it instead of running "
            "it as a formula; `raw` writes cells as scraped"
        },
    )
    token = fields.String(
        load_only=True,
        metadata={"description": "an access token or API key, for a download started by a link"},
    )


USERNAME = validate.Regexp(r"^[A-Za-z0-9_.-]{3,50}$", error="3-50 letters, digits, _ . or -.")


class Register(ma.Schema):
    username = fields.String(required=True, validate=USERNAME)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(8, 200))


class Login(ma.Schema):
    username = fields.String(required=True, validate=validate.Length(1, 254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(1, 200))


class UserOut(ma.Schema):
    id = fields.String(attribute="_id")
    username = fields.String()
    email = fields.String()
    role = fields.String()
    created_at = UTCDateTime()
    last_login = UTCDateTime(allow_none=True)


class TokenOut(ma.Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    user = fields.Nested(UserOut)


class Refresh(ma.Schema):
    refresh_token = fields.String(required=True)


class AccessTokenOut(ma.Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class ApiKeyCreate(ma.Schema):
    name = fields.String(required=True, validate=validate.Length(1, 100))


class ApiKeyOut(ma.Schema):
    id = fields.String(attribute="_id")
    name = fields.String()
    prefix = fields.String()
    created_at = UTCDateTime()
    last_used_at = UTCDateTime(allow_none=True)


class ApiKeyCreated(ApiKeyOut):
    key = fields.String()


class Health(ma.Schema):
    status = fields.String()


class AutoSitesArgs(ma.Schema):
    skip = fields.Integer(load_default=0, validate=validate.Range(0, MAX_SKIP))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class AutoSite(ma.Schema):
    site = fields.String(metadata={"example": "shop.example/js/*"})
    host = fields.String()
    pattern = fields.String()
    engine = fields.String()
    reason = fields.String()
    static_items = fields.Integer(allow_none=True)
    rendered_items = fields.Integer(allow_none=True)
    decisions = fields.Integer(metadata={"description": "times it was measured"})
    uses = fields.Integer(dump_default=0, metadata={"description": "jobs sent on by it"})
    last_job_id = fields.String(allow_none=True)
    decided_at = UTCDateTime()
    expires_at = UTCDateTime()


class AutoSitesOut(ma.Schema):
    total = fields.Integer()
    sites = fields.List(fields.Nested(AutoSite))


class ProxyUrl(fields.String):
    """An http or https proxy URL with host and port (SOCKS is refused: Scrapy cannot use it)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = proxy_url_problem(text)
        if problem:
            raise ValidationError(f"Not a valid proxy URL: {problem}.")
        return text.strip()


class ProxyCreate(ma.Schema):
    url = ProxyUrl(required=True, metadata={"example": "http://127.0.0.1:3128"})


class ProxyUpdate(ma.Schema):
    url = ProxyUrl()
    status = fields.String(validate=validate.OneOf(PROXY_STATUSES))


class ProxyOut(ma.Schema):
    id = fields.String(attribute="_id")
    url = fields.String()
    status = fields.String()
    success_count = fields.Integer()
    failure_count = fields.Integer()
    ban_count = fields.Integer()
    success_rate = fields.Float(allow_none=True)
    avg_latency_ms = fields.Float(allow_none=True)
    cooldown_until = UTCDateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    last_checked_at = UTCDateTime(allow_none=True)
    last_used_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()
