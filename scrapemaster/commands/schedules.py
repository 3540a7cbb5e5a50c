"""`scrapemaster schedules …`: list, add, show, run, history, changes, enable/disable, delete."""

from __future__ import annotations

from typing import Any

import click

from scrapemaster import output
from scrapemaster.commands.common import State, build_spec, job_options, json_option, pass_state


@click.group()
def schedules():
    """Cron schedules that start jobs."""


@schedules.command(name="list")
@json_option
@pass_state
def list_schedules(state: State, as_json: bool):
    """Your schedules, newest first."""
    found = state.client.schedules.list()
    if as_json:
        output.emit_json(found)
        return
    output.table(
        ["ID", "NAME", "CRON", "TIMEZONE", "ENABLED", "NEXT RUN", "LAST RUN"],
        (
            [s.get("id"), s.get("name"), s.get("cron"), s.get("timezone"),
             "yes" if s.get("enabled") else "no", s.get("next_run"), s.get("last_run")]
            for s in found
        ),
    )  # fmt: skip


@schedules.command(name="add")
@click.option("--name", required=True)
@click.option("--cron", required=True, help='Five fields, e.g. "30 6 * * *".')
@click.option("--timezone", "tz", help="An IANA name (default UTC).")
@click.option("--overlap", type=click.Choice(["skip", "allow"]))
@click.option("--key", help="Item field that identifies an item across runs (e.g. sku).")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@job_options
@json_option
@pass_state
def add(state: State, name: str, cron: str, tz: str | None, overlap: str | None, key: str | None,
        disabled: bool, as_json: bool, **spec_options: Any):  # fmt: skip
    """Add a schedule for the job of FILE.json and/or the job options."""
    created = state.client.schedules.create(
        name,
        cron,
        build_spec(**spec_options),
        timezone=tz,
        overlap=overlap,
        key=key,
        enabled=False if disabled else None,
    )
    if as_json:
        output.emit_json(created)
    else:
        output.line(f"schedule {created['id']}: next run {created.get('next_run') or '-'}")


@schedules.command()
@click.argument("schedule_id", metavar="SCHEDULE")
@json_option
@pass_state
def show(state: State, schedule_id: str, as_json: bool):
    """One schedule with its job, next and last run."""
    found = state.client.schedules.get(schedule_id)
    if as_json:
        output.emit_json(found)
    else:
        output.fields(
            (k, v if isinstance(v, str) else output.cell(v, 200)) for k, v in found.items()
        )


@schedules.command()
@click.argument("schedule_id", metavar="SCHEDULE")
@json_option
@pass_state
def run(state: State, schedule_id: str, as_json: bool):
    """Start a run now (whatever the cron and the overlap rule)."""
    started = state.client.schedules.run(schedule_id)
    if as_json:
        output.emit_json(started)
    else:
        output.line(f"run {started['run_id']}: job {started['job_id']} {started.get('status')}")


@schedules.command()
@click.option("--schedule", "schedule_id", help="Only this schedule's runs.")
@click.option(
    "--status",
    type=click.Choice(["started", "completed", "failed", "cancelled", "skipped", "missed"]),
)
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--skip", type=click.IntRange(min=0), default=0)
@json_option
@pass_state
def history(state: State, as_json: bool, **query: Any):
    """Runs of your schedules, newest slot first."""
    page = state.client.schedules.history(**query)
    if as_json:
        output.emit_json(page)
        return
    output.table(
        ["SCHEDULED FOR", "SCHEDULE", "TRIGGER", "STATUS", "ITEMS", "CHANGES", "JOB"],
        (
            [r.get("scheduled_for"), r.get("schedule_name") or r.get("schedule_id"),
             r.get("trigger"), r.get("status"), r.get("items_scraped"),
             _changes(r.get("changes")), r.get("job_id")]
            for r in page.get("runs") or []
        ),
        caption=f"{len(page.get('runs') or [])} of {page.get('total')} runs",
    )  # fmt: skip


def _changes(counts: dict[str, int] | None) -> str:
    if not counts:
        return ""
    return " ".join(
        f"{sign}{counts.get(k, 0)}"
        for sign, k in (("+", "added"), ("-", "removed"), ("~", "changed"))
    )


@schedules.command()
@click.argument("schedule_id", metavar="SCHEDULE")
@click.option("--run", "run_id", help="A run id (default: the newest compared run).")
@click.option("--kind", type=click.Choice(["added", "removed", "changed"]))
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
@pass_state
def changes(state: State, schedule_id: str, run_id: str | None, kind: str | None, limit: int,
            as_json: bool):  # fmt: skip
    """Items added, removed and changed in a run, against the previous completed run."""
    page = state.client.schedules.changes(schedule_id, run=run_id, kind=kind, limit=limit)
    if as_json:
        output.emit_json(page)
        return
    output.table(
        ["KIND", "KEY", "BEFORE", "AFTER"],
        (
            [c.get("kind"), c.get("key"), c.get("before"), c.get("after")]
            for c in page.get("changes") or []
        ),
        caption=f"run {page.get('run_id') or '-'}: {_changes(page.get('counts'))}",
    )


def _toggle(name: str, enabled: bool):
    @schedules.command(name=name, help=f"{name.capitalize()} a schedule.")
    @click.argument("schedule_id", metavar="SCHEDULE")
    @json_option
    @pass_state
    def command(state: State, schedule_id: str, as_json: bool):
        found = state.client.schedules.update(schedule_id, enabled=enabled)
        if as_json:
            output.emit_json(found)
        else:
            output.line(f"schedule {found['id']}: next run {found.get('next_run') or '-'}")

    return command


enable = _toggle("enable", True)
disable = _toggle("disable", False)


@schedules.command()
@click.argument("schedule_id", metavar="SCHEDULE")
@pass_state
def delete(state: State, schedule_id: str):
    """Delete a schedule (its history and jobs stay)."""
    state.client.schedules.delete(schedule_id)
    output.line(f"schedule {schedule_id}: deleted")


COMMANDS = [schedules]
