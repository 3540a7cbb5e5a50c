"""Job commands: submit (and wait), status, list, stats, cancel, retry, reset, delete, logs."""

from __future__ import annotations

import json
from typing import Any

import click

from scrapemaster import output
from scrapemaster.commands import watch
from scrapemaster.commands.common import OK, State, build_spec, job_options, json_option, pass_state
from scrapemaster.models import TERMINAL_EVENTS, Job, LogLine

STATUSES = ["pending", "running", "completed", "failed", "cancelled"]
MAX_LOG_LINES = 1000  # the API's largest `limit` for /jobs/{id}/logs


@click.command()
@job_options
@click.option("--wait", is_flag=True, help="Show live progress; exit 1 if the job fails.")
@json_option
@pass_state
@click.pass_context
def submit(ctx: click.Context, state: State, wait: bool, as_json: bool, **spec_options: Any):
    """Submit a job from FILE.json (- for stdin) and/or options.

    Example: scrapemaster submit --url https://shop.example/ -s title=h1::text --wait
    """
    job = state.client.jobs.submit(build_spec(**spec_options))
    if not wait:
        output.emit_json(job) if as_json else output.line(job["id"])
        return
    output.note(f"submitted job {job['id']}")
    ctx.exit(_follow_to_end(state, job, as_json))


@click.command(name="wait")
@click.argument("job_id", metavar="JOB")
@json_option
@pass_state
@click.pass_context
def wait_for(ctx: click.Context, state: State, job_id: str, as_json: bool):
    """Follow a job's live progress until it ends; exit 1 if it failed or was cancelled."""
    ctx.exit(_follow_to_end(state, state.client.jobs.get(job_id), as_json))


def _follow_to_end(state: State, job: Job, as_json: bool) -> int:
    """Live progress, then the closing line (or the job's JSON); the exit code."""
    final = watch.follow(state.client, job)
    text, code = watch.summary(final)
    if as_json:
        output.emit_json(final)
    elif code == OK:
        output.line(text)
    else:
        output.note(text)
    return code


@click.command()
@click.argument("job_id", metavar="JOB")
@json_option
@pass_state
def status(state: State, job_id: str, as_json: bool):
    """Show a job's status, counters and error."""
    job = state.client.jobs.get(job_id)
    if as_json:
        output.emit_json(job)
        return
    error = job.get("error") or {}
    took = job.get("duration_seconds")
    output.fields(
        [
            ("id", job.get("id")),
            ("status", f"{job.get('status')} ({job.get('progress', 0)}%)"),
            ("engine", _engine(job)),
            ("url", ", ".join(job.get("urls") or [job.get("url", "")])),
            ("pages", job.get("pages_crawled")),
            ("items", job.get("items_scraped")),
            ("failed items", job.get("items_failed") or None),
            ("attempts", job.get("attempts")),
            ("error", f"{error.get('type')}: {error.get('message')}" if error else None),
            ("created", job.get("created_at")),
            ("started", job.get("started_at")),
            ("completed", job.get("completed_at")),
            ("duration", f"{took:.1f} s" if isinstance(took, int | float) else None),
            ("schedule", job.get("schedule_id")),
        ]
    )


def _engine(job: Job) -> str:
    used = job.get("engine_used")
    return (
        f"{job.get('engine')} → {used}"
        if used and used != job.get("engine")
        else str(used or job.get("engine"))
    )


@click.command(name="list")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--engine", type=click.Choice(["auto", "scrapy", "playwright"]))
@click.option("--schedule", "schedule_id", help="Only jobs this schedule started.")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--sort", type=click.Choice(["created_at", "status", "priority"]))
@click.option("--asc", is_flag=True, help="Oldest (lowest) first.")
@json_option
@pass_state
def list_jobs(
    state: State, limit: int, page: int, sort: str | None, asc: bool, as_json: bool, **filters
):
    """List your jobs, newest first."""
    found = state.client.jobs.list(
        skip=(page - 1) * limit,
        limit=limit,
        sort_by=sort,
        sort_order="asc" if asc else None,
        **filters,
    )
    if as_json:
        output.emit_json(
            {"jobs": found.jobs, "total": found.total, "skip": found.skip, "limit": found.limit}
        )
        return
    first = found.skip + 1 if found.jobs else 0
    output.table(
        ["ID", "STATUS", "ENGINE", "PROGRESS", "PAGES", "ITEMS", "CREATED", "URL"],
        (
            [
                j.get("id"),
                j.get("status"),
                _engine(j),
                f"{j.get('progress', 0)}%",
                j.get("pages_crawled"),
                j.get("items_scraped"),
                j.get("created_at"),
                j.get("url"),
            ]
            for j in found.jobs
        ),
        caption=f"jobs {first}-{found.skip + len(found.jobs)} of {found.total}",
    )


@click.command()
@json_option
@pass_state
def stats(state: State, as_json: bool):
    """Count your jobs by status."""
    counts = state.client.jobs.stats()
    if as_json:
        output.emit_json(counts)
    else:
        order = ["total", *STATUSES]
        output.fields([(k, str(counts.get(k, 0))) for k in order])


def _action(name: str, doc: str):
    @click.command(name=name, help=doc)
    @click.argument("job_id", metavar="JOB")
    @json_option
    @pass_state
    def command(state: State, job_id: str, as_json: bool):
        job = getattr(state.client.jobs, name)(job_id)
        if as_json:
            output.emit_json(job)
        else:
            output.line(f"job {job['id']}: {job.get('status')}")

    return command


cancel = _action("cancel", "Stop a pending or running job (its items so far are kept).")
retry = _action("retry", "Run a failed or cancelled job again, keeping its items.")
reset = _action("reset", "Clear a finished job's results and run it again.")


@click.command()
@click.argument("job_id", metavar="JOB")
@json_option
@pass_state
def delete(state: State, job_id: str, as_json: bool):
    """Delete a job and its results (a running job is stopped first)."""
    state.client.jobs.delete(job_id)
    output.emit_json({"id": job_id, "deleted": True}) if as_json else output.line(
        f"job {job_id}: deleted"
    )


def _print_log(entry: LogLine, as_json: bool) -> None:
    if as_json:
        output.line(json.dumps(entry, ensure_ascii=False))
    else:
        output.line(
            f"{entry.get('timestamp', '')} {entry.get('level', ''):<7} {entry.get('message', '')}"
        )


@click.command()
@click.argument("job_id", metavar="JOB")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends.")
@click.option(
    "--level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)
)
@click.option("--limit", type=click.IntRange(1, MAX_LOG_LINES), default=100, show_default=True)
@json_option
@pass_state
def logs(state: State, job_id: str, follow: bool, level: str | None, limit: int, as_json: bool):
    """Print a job's log lines (--json: one JSON object per line)."""
    jobs = state.client.jobs
    if not follow:
        for entry in jobs.logs(job_id, level=level, limit=limit):
            _print_log(entry, as_json)
        return
    # The job's events say when new lines were written; the log itself is read from the API,
    # which has every line (not all of them are events).
    shown = 0

    def catch_up() -> None:
        nonlocal shown
        lines = jobs.logs(job_id, level=level, limit=MAX_LOG_LINES)
        for entry in lines[shown:]:
            _print_log(entry, as_json)
        shown = max(shown, len(lines))

    catch_up()
    with state.client.events.job(job_id) as stream:
        for event in stream:
            kind = event.get("type")
            if shown >= MAX_LOG_LINES and kind == "job.log":
                data = event.get("data") or {}  # past what the API lists: the events' lines
                _print_log({"timestamp": event.get("timestamp", ""), **data}, as_json)  # type: ignore[typeddict-item]
            elif kind in ("job.log", "job.started") or kind in TERMINAL_EVENTS:
                catch_up()
            if kind in TERMINAL_EVENTS:
                break


COMMANDS = [submit, wait_for, status, list_jobs, stats, cancel, retry, reset, delete, logs]
