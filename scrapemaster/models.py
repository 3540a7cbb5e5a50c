"""Typed shapes of the API's answers (docs/api.md): plain dicts, as the JSON arrives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
TERMINAL_EVENTS = frozenset({"job.completed", "job.failed", "job.cancelled"})


class User(TypedDict, total=False):
    id: str
    username: str
    email: str
    role: str
    created_at: str
    last_login: str | None


class AdminUser(User, total=False):
    """A user as an admin sees it (GET /admin/users)."""

    active: bool


class UserPage(TypedDict, total=False):
    total: int
    users: list[AdminUser]


class Tokens(TypedDict, total=False):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    user: User


class ApiKey(TypedDict, total=False):
    id: str
    name: str
    prefix: str
    key: str  # only in the answer that created it
    created_at: str
    last_used_at: str | None


class JobError(TypedDict, total=False):
    type: str
    message: str


class AutoDecision(TypedDict, total=False):
    engine: str
    reason: str
    static_items: int | None
    rendered_items: int | None
    learned: bool
    site: str


class Job(TypedDict, total=False):
    id: str
    url: str
    urls: list[str]
    engine: str
    engine_used: str | None
    status: str
    priority: int
    progress: int
    items_scraped: int
    items_failed: int
    pages_crawled: int
    attempts: int
    run: int  # 1, then +1 on each retry or reset (events carry it as data.run)
    error: JobError | None
    selectors: dict[str, str]
    config: dict[str, Any]
    webhook_url: str | None
    owner_id: str
    created_at: str
    started_at: str | None
    completed_at: str | None
    duration_seconds: float | None
    schedule_id: str | None
    warnings: list[str]
    auto_decision: AutoDecision | None


class JobStats(TypedDict, total=False):
    total: int
    pending: int
    running: int
    completed: int
    failed: int
    cancelled: int


class LogLine(TypedDict, total=False):
    timestamp: str
    level: str
    message: str


class Item(TypedDict, total=False):
    job_id: str
    url: str
    data: dict[str, Any]
    scraped_at: str


class ResultsPage(TypedDict, total=False):
    job_id: str
    total: int
    skip: int
    limit: int
    results: list[Item]


class Event(TypedDict, total=False):
    id: str
    type: str
    job_id: str
    timestamp: str
    data: dict[str, Any]


class Webhook(TypedDict, total=False):
    id: str
    webhook_url: str
    events: list[str]
    enabled: bool
    secret: str  # only in the answer that created it
    created_at: str


class Delivery(TypedDict, total=False):
    id: str
    event_id: str
    event: str
    job_id: str | None
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: float | None
    timestamp: str
    next_retry_at: str | None
    state: str


class Queued(TypedDict, total=False):
    id: str
    state: str


class Schedule(TypedDict, total=False):
    id: str
    name: str
    cron: str
    timezone: str
    enabled: bool
    overlap: str
    key: str | None
    job: dict[str, Any]
    next_run: str | None
    last_run: str | None
    created_at: str
    updated_at: str


class RunStarted(TypedDict, total=False):
    job_id: str
    run_id: str
    status: str


class Run(TypedDict, total=False):
    id: str
    schedule_id: str
    schedule_name: str | None
    scheduled_for: str
    trigger: str
    status: str
    job_id: str | None
    started_at: str | None
    completed_at: str | None
    items_scraped: int
    error: str | None
    changes: dict[str, int] | None


class HistoryPage(TypedDict, total=False):
    runs: list[Run]
    total: int
    limit: int
    skip: int


class Change(TypedDict, total=False):
    kind: str
    key: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ChangesPage(TypedDict, total=False):
    run_id: str | None
    compared_with: str | None
    counts: dict[str, int] | None
    changes: list[Change]
    total: int
    limit: int
    skip: int


@dataclass
class JobList:
    """One page of `GET /jobs`: the jobs and the total the filters match (X-Total-Count)."""

    jobs: list[Job]
    total: int
    skip: int
    limit: int
    links: dict[str, str] = field(default_factory=dict)
