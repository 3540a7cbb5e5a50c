"""`auto` in the worker: where a claimed job goes before it crawls, and what its first page
decided afterwards (hand it over, hand it back, remember the site).

The static worker has no browser and the browser worker is the costly one, so a job moves
at most twice, and only around its first page: scrapy (first page gives nothing, has
scripts) → playwright (renders that page, compares) → scrapy again when the render found no
more. Later pages follow the decision; the site's memory sends later jobs straight on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scrapers.engine import CrawlResult
from shared import tasks
from shared.auto_memory import AutoMemory, learned_decision
from shared.jobs import JobRepository


@dataclass
class Plan:
    """What to do with a claimed job: `route` it to another queue now (with `decision`), or
    run its engine with `kwargs`."""

    route: str | None = None
    decision: dict[str, Any] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


def plan(job: dict[str, Any], engine_name: str, memory: AutoMemory) -> Plan:
    """The plan of a claimed job on `engine_name`'s queue."""
    if job["engine"] != "auto":
        return Plan()
    decided = job.get("auto_decision") or {}
    if engine_name == "playwright":
        if job.get("auto_probe"):
            return Plan(kwargs={"compare_with": job["auto_probe"]})
        if decided.get("engine") == "playwright":
            return Plan(kwargs={"check_first": True})
        return Plan()
    if decided.get("engine") == "playwright":
        return Plan(route=tasks.QUEUE_PLAYWRIGHT, decision=decided)
    if decided.get("engine") == "scrapy":
        return Plan()  # measured already (handed back by a render): no probe
    remembered = memory.recall(job["url"])
    if remembered is not None and remembered["engine"] == "playwright":
        memory.used(job["url"], job["_id"])
        return Plan(route=tasks.QUEUE_PLAYWRIGHT, decision=learned_decision(remembered))
    # a site measured static already: only an empty first page makes it render again, not
    # the job's browser-only options (scroll, wait_for) alone
    return Plan(kwargs={"probe": True, "probe_options": remembered is None})


def route(
    repo: JobRepository,
    job: dict[str, Any],
    chosen: Plan,
    send: Callable[[dict[str, Any], str], None],
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
    job: dict[str, Any],
    result: CrawlResult,
    counters: dict[str, Any],
    engine_name: str,
    memory: AutoMemory,
    send: Callable[[dict[str, Any], str], None],
    log: Callable[[str, str], None],
) -> tuple[bool, dict[str, Any]]:
    """(handed over, fields for the finished job) once an `auto` job's crawl ended."""
    if job["engine"] != "auto":
        return False, {}

    def hand_over(queue: str, engine_used: str, reason: str | None, **fields: Any) -> None:
        moved = repo.transition(
            job["_id"],
            "handoff",
            extra_filter={"run_id": job.get("run_id")},
            current=job,
            queue=queue,
            engine_used=engine_used,
            **fields,
            **counters,
        )
        if moved is not None:
            if reason:
                log("INFO", f"auto: {reason}")
            send(moved, queue)

    if result.needs_javascript and engine_name == "scrapy":
        hand_over(tasks.QUEUE_PLAYWRIGHT, "playwright", result.reason, auto_probe=result.first_page)
        return True, {}
    decision = result.decision
    if decision is not None and not result.error:
        decision = {**decision, "learned": False, "site": _site(job)}
        memory.remember(job["url"], decision, job_id=job["_id"])
    if decision is not None and engine_name == "playwright" and decision["engine"] == "scrapy":
        hand_over(tasks.QUEUE_SCRAPY, "scrapy", None, auto_probe=None, auto_decision=decision)
        return True, {}
    learned = (job.get("auto_decision") or {}).get("learned")
    if learned and result.first_page is not None and not result.first_page["items"]:
        memory.forget(job["url"])
    return False, {"auto_decision": decision or job.get("auto_decision"), "auto_probe": None}


def _site(job: dict[str, Any]) -> str:
    from shared.auto_memory import site_key

    return site_key(job["url"])
