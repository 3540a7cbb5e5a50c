"""Running a selector preview in a worker: one page of a job body on this process's real
engine, with the job's limits and target policy; the answer goes to Redis, nothing to MongoDB."""

from __future__ import annotations

import logging
import os
import traceback
from typing import Any

import redis

from scrapers.engine import AutoPlan, CrawlResult, RunContext
from scrapers.proxies import Rotation
from shared import db as dbmod
from shared import preview, sessions, tasks
from shared.jobspec import JobSpec
from shared.proxies import ProxyRepository
from shared.settings import SettingsError, get_settings
from shared.vault import Vault, VaultError
from workers.engines import engine_for

logger = logging.getLogger(__name__)
_clients: dict[int, redis.Redis] = {}


def client() -> redis.Redis:
    """This process's Redis client (made after fork)."""
    pid = os.getpid()
    if pid not in _clients:
        _clients.clear()
        _clients[pid] = redis.Redis.from_url(
            get_settings().redis_url, socket_timeout=10, socket_connect_timeout=5
        )
    return _clients[pid]


class PreviewSink:
    """Collects what the engine reports for the one page: status, title, items, notes."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.status: int | None = None
        self.title: str | None = None
        self.found: list[dict[str, Any]] = []
        self.notes: list[dict[str, str]] = []
        self.should_stop = False

    def page(self, url: str, status: int) -> None:
        if self.url is None:
            self.url, self.status = url, status

    def document(self, url: str, page: Any) -> None:
        if self.title is None and page.type != "json":
            title = page.css("title::text").get()
            self.title = title.strip() if title else None

    def items(self, page_url: str, found: list[dict[str, Any]], key: str | None = None) -> None:
        self.found.extend(found)

    def file(self, page_url: str, kind: str, content_type: str, data: bytes) -> bool:
        return False  # a preview stores nothing

    def log(self, level: str, message: str) -> None:
        if len(self.notes) < preview.MAX_LOGS:
            self.notes.append({"level": level, "message": message})


def run(preview_id: str, body: dict[str, Any], engine: str) -> None:
    """Take preview `preview_id` (unless the API gave up on it) and answer it."""
    settings = get_settings()
    redis_client = client()
    if not preview.claim(redis_client, preview_id):
        logger.info("preview %s: nobody waits for it any more", preview_id)
        return
    preview.push(redis_client, preview_id, preview.STARTED, engine=engine)
    sink = PreviewSink()
    sealed = body  # handed on (auto) as it came: sealed
    try:  # sealed through Redis like a stored job's: opened just before use
        body = {**body, "config": Vault.from_settings(settings).open_config(body["config"])}
    except (VaultError, SettingsError) as exc:
        error = {"type": "secrets_unavailable", "message": str(exc)}
        preview.push(
            redis_client, preview_id, preview.DONE, result=_answer(body, sink, engine, error)
        )
        return
    spec = JobSpec.from_job(
        {"_id": f"preview-{preview_id}", **body},
        max_items=settings.max_items_per_job,
        max_page_bytes=settings.max_page_bytes,
        max_items_per_page=settings.max_items_per_page,
        max_field_bytes=settings.max_field_bytes,
        user_agent=settings.user_agent,
    )
    name = "playwright" if engine == "playwright" else "scrapy"
    try:
        result = _crawl(name, spec, sink, probe=engine == "auto", session=_session(spec, sink))
    except LoginFailed as exc:
        result = CrawlResult(error=exc.error)
    except Exception as exc:  # an engine bug: say so in the answer, never leave the API waiting
        logger.exception("preview %s: engine %s crashed", preview_id, name)
        message = "".join(traceback.format_exception_only(exc)).strip()
        result = CrawlResult(error={"type": "internal_error", "message": f"engine: {message}"})
    if result.needs_javascript and engine == "auto":
        # the page needs a browser: the same preview, on the playwright queue
        wait = settings.preview_pickup_seconds
        preview.reopen(redis_client, preview_id, wait)
        preview.push(redis_client, preview_id, preview.HANDOFF, reason=result.reason)
        from workers import celery

        handed = {**sealed, "auto_reason": f"auto: {result.reason}"}
        celery.send_task(
            tasks.PREVIEW, **tasks.preview_options(preview_id, handed, "playwright", wait)
        )
        return
    items, truncated = preview.bound_items(sink.found, settings.preview_max_items)
    auto_reason = body.get("auto_reason")
    if engine == "auto" and auto_reason is None:
        auto_reason = f"auto: {result.reason or 'static page → scrapy'}"
    answer = {
        "url": body["url"],
        "final_url": sink.url,
        "status_code": sink.status,
        "title": sink.title,
        "engine": name,
        "auto_reason": auto_reason,
        "count": len(sink.found),
        "items": items,
        "truncated": truncated,
        "error": result.error,
        "logs": sink.notes,
    }
    preview.push(redis_client, preview_id, preview.DONE, result=answer)


def _answer(
    body: dict[str, Any], sink: PreviewSink, engine: str, error: dict[str, str]
) -> dict[str, Any]:
    """The answer of a preview that could not start."""
    return {
        "url": body["url"],
        "final_url": None,
        "status_code": None,
        "title": None,
        "engine": engine,
        "auto_reason": None,
        "count": 0,
        "items": [],
        "truncated": False,
        "error": error,
        "logs": sink.notes,
    }


class LoginFailed(Exception):
    """A preview's login failed: its error is the preview's."""

    def __init__(self, error: dict[str, str]) -> None:
        super().__init__(error["message"])
        self.error = error


def _session(spec: JobSpec, sink: PreviewSink) -> dict[str, Any] | None:
    """The session the preview's page opens with: config.cookies, and a login's (in the
    browser: the API sends a preview that logs in to the playwright queue)."""
    start = sessions.start_cookies(spec.config, spec.urls)
    if sessions.login_of(spec.config) is None:
        return sessions.combined(start, None) if start else None
    from scrapers.login import browser_login
    from scrapers.playwright_engine import PlaywrightEngine

    engine = engine_for("playwright")
    assert isinstance(engine, PlaywrightEngine)
    outcome = browser_login(engine, spec, sink, None, sessions.combined(start, None))
    if outcome.error is not None:
        raise LoginFailed(outcome.error)
    return sessions.combined(start, outcome.session)


def _crawl(
    name: str, spec: JobSpec, sink: PreviewSink, probe: bool, session: dict[str, Any] | None
) -> CrawlResult:
    settings = get_settings()
    proxy = str(spec.config.get("proxy") or "none")
    pool = (
        ProxyRepository.from_settings(dbmod.database(settings), settings)
        if proxy == "pool"
        else None
    )
    rotation = Rotation(proxy, pool, max_attempts=settings.proxy_max_attempts)
    plan = AutoPlan(probe=probe and name == "scrapy")
    context = RunContext(rotation=rotation, auto=plan, session=session)
    return engine_for(name).run(spec, sink, context)
