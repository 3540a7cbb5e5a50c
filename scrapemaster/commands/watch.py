"""Following a job live from its event stream: a rich progress bar, or plain lines when piped."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from scrapemaster import output
from scrapemaster.client import Client
from scrapemaster.commands.common import JOB_FAILED, OK
from scrapemaster.models import TERMINAL_EVENTS, Job

PLAIN_EVERY = 1.0  # seconds between two plain progress lines of one status


def _figures(state: dict[str, Any], event: dict[str, Any]) -> None:
    data = event.get("data") or {}
    for key in ("status", "progress", "pages_crawled", "items_scraped"):
        if data.get(key) is not None:
            state[key] = data[key]
    if event.get("type") == "job.completed":
        state["progress"] = 100


def _plain(state: dict[str, Any]) -> str:
    return (
        f"{state['status']:<9}  {state['progress']:>3}%  pages {state['pages_crawled']}"
        f"  items {state['items_scraped']}"
    )


def follow(client: Client, job: Job) -> Job:
    """Show the job's progress until it ends; the finished job (re-read from the API)."""
    job_id = job["id"]
    # the stream replays the current run's events from its first: the figures start from
    # nothing, and an earlier run's end (before a retry or reset) is not this run's
    state: dict[str, Any] = {
        "status": "pending",
        "progress": 0,
        "pages_crawled": 0,
        "items_scraped": 0,
    }
    run = job.get("run")
    stream = client.events.job(job_id, run=run if isinstance(run, int) else None)
    try:
        if output.err.is_terminal:
            _bar(stream, state, job_id)
        else:
            _lines(stream, state)
    finally:
        stream.close()
    return client.jobs.get(job_id)


def _bar(stream: Any, state: dict[str, Any], job_id: str) -> None:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("pages {task.fields[pages]}  items {task.fields[items]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=output.err, transient=False) as bar:

        def show() -> None:
            bar.update(
                task,
                completed=state["progress"],
                description=f"{output.short(job_id)} {state['status']}",
                pages=state["pages_crawled"],
                items=state["items_scraped"],
            )

        task = bar.add_task("", total=100, pages=0, items=0)
        show()
        for event in stream:
            _figures(state, event)
            show()
            if event.get("type") in TERMINAL_EVENTS:
                break


def _lines(stream: Any, state: dict[str, Any]) -> None:
    shown, at = "", 0.0
    for event in stream:
        before = state["status"]
        _figures(state, event)
        text, now = _plain(state), time.monotonic()
        final = event.get("type") in TERMINAL_EVENTS
        if text != shown and (final or state["status"] != before or now - at >= PLAIN_EVERY):
            output.note(text)
            shown, at = text, now
        if final:
            break


def _count(n: int | None, noun: str) -> str:
    return f"{n or 0} {noun}{'' if n == 1 else 's'}"


def summary(job: Job) -> tuple[str, int]:
    """The one closing line and the exit code: 0 completed, 1 failed or cancelled."""
    status = job.get("status", "?")
    counts = (
        f"{_count(job.get('pages_crawled'), 'page')}, {_count(job.get('items_scraped'), 'item')}"
    )
    took = job.get("duration_seconds")
    timing = f" in {took:.1f} s" if isinstance(took, int | float) else ""
    if status == "completed":
        return f"completed: {counts}{timing} (job {job['id']})", OK
    error = job.get("error") or {}
    reason = f": {error.get('type')}: {error.get('message')}" if error else ""
    return f"{status}{reason} ({counts}; job {job['id']})", JOB_FAILED
