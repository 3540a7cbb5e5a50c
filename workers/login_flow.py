"""Logins and cookies in the worker: open a claimed job's secrets, log in in the browser (or
take its schedule's kept session while it is still logged in), and hand a `scrapy` job's
session to the static engine.

A job that logs in is queued on `playwright` whatever its engine (shared/jobs.queue_for). The
browser worker logs in; a `playwright` (or `auto`) job then crawls in that session, a `scrapy`
job goes to the `scrapy` queue with the session sealed on it (`session`), and Scrapy's cookie
jar starts with its cookies. The static worker never needs a browser.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pymongo.errors import PyMongoError

from scrapers.engine import Sink
from shared import jobs, sessions, tasks
from shared.jobs import JobDoc, JobRepository
from shared.jobspec import JobSpec
from shared.sessions import BrowserSession
from shared.vault import Vault

LOGIN_FAILED = "login_failed"
HEARTBEAT_SECONDS = 2.0  # a login takes up to a minute: the reconciler must see the job alive


@dataclass
class Prepared:
    """What a claimed job crawls with: `session` (None: no cookies), or `error` to fail it
    with, or `handed` (it went to another queue: nothing more to do here)."""

    session: BrowserSession | None = None
    error: dict[str, str] | None = None
    handed: bool = False


class LogSink:
    """A sink for the login, before the crawl's own: lines go to the job's log."""

    should_stop = False

    def __init__(self, log: Callable[[str, str], None]) -> None:
        self._log = log

    def page(self, url: str, status: int) -> None:
        """The login's pages are not the crawl's: not counted."""

    def items(self, page_url: str, found: list[dict[str, Any]], key: str | None = None) -> None:
        """A login yields no items."""

    def file(self, page_url: str, kind: str, content_type: str, data: bytes) -> bool:
        """Nor files: a login page is never captured."""
        return False

    def log(self, level: str, message: str) -> None:
        self._log(level, message)


def prepare(
    repo: JobRepository,
    job: JobDoc,
    spec: JobSpec,
    engine_name: str,
    vault: Vault,
    browser_login: Callable[[JobSpec, Sink, BrowserSession | None, BrowserSession], Any],
    send: Callable[[JobDoc, str], None],
    log: Callable[[str, str], None],
) -> Prepared:
    """The session `job` crawls with on `engine_name`'s queue (`spec`: its config in the
    clear; `browser_login`: the browser engine's login, scrapers/login.py)."""
    start = sessions.start_cookies(spec.config, spec.urls)
    login = sessions.login_of(spec.config)
    if login is None:
        return Prepared(session=sessions.combined(start, None) if start else None)
    if engine_name != tasks.QUEUE_PLAYWRIGHT:
        sealed = job.get("session")
        if sealed:
            return Prepared(session=sessions.combined(start, vault.open_json(sealed)))
        # not logged in yet (queued here before it had a login): the browser does it first
        return Prepared(handed=_hand(repo, job, tasks.QUEUE_PLAYWRIGHT, {}, send, log))
    schedule_id = job.get("schedule_id")
    kept = sessions.kept(repo.db, vault, schedule_id) if schedule_id else None
    with heartbeat(repo, job):
        outcome = browser_login(spec, LogSink(log), kept, sessions.combined(start, None))
    if outcome.error is not None:
        if schedule_id and kept is not None:
            sessions.forget(repo.db, schedule_id)
        return Prepared(error=outcome.error)
    if schedule_id and not outcome.reused:
        sessions.keep(repo.db, vault, schedule_id, outcome.session, jobs.now())
    if job["engine"] == "scrapy":
        fields = {"session": vault.seal_json(outcome.session)}
        log("INFO", "login: the session goes to the static engine (scrapy)")
        return Prepared(handed=_hand(repo, job, tasks.QUEUE_SCRAPY, fields, send, log))
    return Prepared(session=sessions.combined(start, outcome.session))


def _hand(
    repo: JobRepository,
    job: JobDoc,
    queue: str,
    fields: dict[str, Any],
    send: Callable[[JobDoc, str], None],
    log: Callable[[str, str], None],
) -> bool:
    """Back to pending on `queue` (before any crawl); True, also when a user cancelled it
    meanwhile (then there is nothing to send)."""
    moved = repo.transition(
        job["_id"],
        "handoff",
        extra_filter={"run_id": job.get("run_id")},
        current=job,
        queue=queue,
        engine_used=queue,
        **fields,
    )
    if moved is not None:
        send(moved, queue)
    else:
        log("INFO", "login: the job moved meanwhile (cancelled?); not handed on")
    return True


@contextlib.contextmanager
def heartbeat(repo: JobRepository, job: JobDoc) -> Iterator[None]:
    """Keep the claimed job's heartbeat fresh while its login runs (the sink does it once the
    crawl starts), so the reconciler does not take it for a job whose worker died."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(PyMongoError):
                repo.jobs.update_one(
                    {"_id": job["_id"], "run_id": job.get("run_id"), "status": jobs.RUNNING},
                    {"$set": {"heartbeat_at": jobs.now()}},
                )

    thread = threading.Thread(target=beat, name=f"login-heartbeat-{job['_id']}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(HEARTBEAT_SECONDS + 5)
