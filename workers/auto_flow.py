"""`auto` in the worker: where a claimed job goes before it crawls, and what its first page
decided afterwards (hand it over, hand it back, remember the site).

The static worker has no browser and the browser worker is the costly one, so a job moves
at most twice, and only around its first page: scrapy (first page gives nothing, has
scripts) → playwright (renders that page, compares) → scrapy again when the render found no
more. Later pages follow the decision; the site's memory sends later jobs straight on.
The decisions themselves are scrapers/auto.py's; this module moves the job and the memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from scrapers import auto
from scrapers.engine import AutoPlan, CrawlResult, RunContext
from scrapers.proxies import Rotation
from shared import tasks
from shared.actions import browser_required
from shared.auto_memory import AutoMemory, learned_decision, site_key
from shared.jobs import JobDoc, JobRepository
from shared.jobspec import AutoDecision, FirstPage

_QUEUE = {auto.PLAYWRIGHT: tasks.QUEUE_PLAYWRIGHT, auto.SCRAPY: tasks.QUEUE_SCRAPY}


@dataclass(frozen=True)
class Plan:
    """What to do with a claimed job: `route` it to another queue now (with `decision`), or
    run its engine with the `auto` plan."""

    route: str | None = None
    decision: AutoDecision | None = None
    auto: AutoPlan = AutoPlan()

    def context(self, rotation: Rotation | None = None) -> RunContext:
        """The engine's run context: this plan with the job's proxy rotation."""
        return RunContext(rotation=rotation, auto=self.auto)


def plan(job: JobDoc, engine_name: str, memory: AutoMemory) -> Plan:
    """The plan of a claimed job on `engine_name`'s queue."""
    if job["engine"] != "auto":
        return Plan()
    decided = cast("AutoDecision | None", job.get("auto_decision") or None)
    probe = cast("FirstPage | None", job.get("auto_probe") or None)
    remembered = None
    measured = decided is not None and decided.get("engine") in (auto.PLAYWRIGHT, auto.SCRAPY)
    if engine_name != auto.PLAYWRIGHT and not measured:
        remembered = memory.recall(job["url"])
    learned = learned_decision(remembered) if remembered else None
    required = browser_required(job.get("config"))
    if required:
        remembered = learned = None  # the job's options decide, not the site's memory
    chosen = auto.routing(engine_name, decided, probe, remembered, learned, required)
    if chosen.recalled:
        memory.used(job["url"], job["_id"])
    route = _QUEUE[chosen.route] if chosen.route else None
    return Plan(route=route, decision=chosen.decision, auto=chosen.auto)


def route(
    repo: JobRepository,
    job: JobDoc,
    chosen: Plan,
    send: Callable[[JobDoc, str], None],
    log: Callable[[str, str], None],
) -> None:
    """Hand a claimed job to `chosen.route` before any crawl (a learned decision)."""
    assert chosen.route is not None and chosen.decision is not None
    moved = repo.transition(
        job["_id"],
        "handoff",
        extra_filter={"run_id": job.get("run_id")},
        current=job,
        queue=chosen.route,
        engine_used=chosen.route,
        auto_decision=chosen.decision,
    )
    if moved is not None:
        log("INFO", f"auto: {chosen.decision['reason']}")
        send(moved, chosen.route)


def after_run(
    repo: JobRepository,
    job: JobDoc,
    result: CrawlResult,
    counters: dict[str, Any],
    engine_name: str,
    memory: AutoMemory,
    send: Callable[[JobDoc, str], None],
    log: Callable[[str, str], None],
) -> tuple[bool, dict[str, Any]]:
    """(handed over, fields for the finished job) once an `auto` job's crawl ended."""
    if job["engine"] != "auto":
        return False, {}
    outcome = auto.after_run(
        engine_name,
        result.needs_javascript,
        result.reason,
        result.first_page,
        result.decision,
        failed=bool(result.error),
        stored=cast("AutoDecision | None", job.get("auto_decision") or None),
        site=site_key(job["url"]),
    )
    if outcome.remember is not None:
        memory.remember(job["url"], AutoDecision(**outcome.remember), job_id=job["_id"])
    if outcome.forget:
        memory.forget(job["url"])
    if outcome.hand_to is None:
        return False, dict(outcome.fields or {})
    queue = _QUEUE[outcome.hand_to]
    moved = repo.transition(
        job["_id"],
        "handoff",
        extra_filter={"run_id": job.get("run_id")},
        current=job,
        queue=queue,
        engine_used=outcome.hand_to,
        **(outcome.fields or {}),
        **counters,
    )
    if moved is not None:
        if outcome.reason:
            log("INFO", f"auto: {outcome.reason}")
        send(moved, queue)
    return True, {}
