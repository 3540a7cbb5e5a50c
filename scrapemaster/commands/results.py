"""Result commands: print a job's items, export them to a file with download progress."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.progress import DownloadColumn, Progress, SpinnerColumn, TextColumn, TransferSpeedColumn

from scrapemaster import output
from scrapemaster.commands.common import State, json_option, pass_state
from scrapemaster.models import Item


@click.command()
@click.argument("job_id", metavar="JOB")
@click.option("--skip", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--all", "everything", is_flag=True, help="Every item, fetched page by page.")
@json_option
@pass_state
def results(state: State, job_id: str, skip: int, limit: int, everything: bool, as_json: bool):
    """Show a job's items (a table, or --json: a JSON array of {url, data, scraped_at})."""
    if everything:
        items = state.client.results.iterate(job_id, skip=skip)
        if as_json:
            output.emit_json_array(items)
            return
        _table(list(items), None, skip)
        return
    page = state.client.results.page(job_id, skip=skip, limit=limit)
    if as_json:
        output.emit_json(page)
        return
    _table(page.get("results") or [], page.get("total"), skip)


def _table(items: list[Item], total: int | None, skip: int) -> None:
    names: list[str] = []
    for item in items:
        names += [k for k in (item.get("data") or {}) if k not in names]
    rows = ([*((item.get("data") or {}).get(n) for n in names), item.get("url")] for item in items)
    first = skip + 1 if items else 0
    total_text = f" of {total}" if total is not None else ""
    caption = f"items {first}-{skip + len(items)}{total_text}"
    output.table([*(n.upper() for n in names), "URL"], rows, caption=caption)


@click.command()
@click.argument("job_id", metavar="JOB")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "jsonl"]),
    default="csv",
    show_default=True,
)
@click.option("-o", "--output", "dest", help="File to write (default JOB.FORMAT; - for stdout).")
@click.option(
    "--raw-formulas",
    is_flag=True,
    help="CSV: write cells that start with = + - @ as scraped (by default they get a leading ' "
    "so a spreadsheet does not run them).",
)
@json_option
@pass_state
def export(
    state: State, job_id: str, fmt: str, dest: str | None, raw_formulas: bool, as_json: bool
):
    """Download every item of a job as CSV, JSON or JSONL, streamed, with progress."""
    formulas = "raw" if raw_formulas else "escape"
    if dest == "-":
        state.client.results.export(job_id, sys.stdout.buffer, format=fmt, csv_formulas=formulas)
        sys.stdout.flush()
        return
    path = Path(dest or f"{job_id}.{fmt}")
    if path.is_dir():
        raise click.BadParameter(f"{path} is a folder", param_hint="--output")
    columns = (
        SpinnerColumn(),
        TextColumn(f"{path.name}"),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    live = output.err.is_terminal
    with Progress(*columns, console=output.err, disable=not live) as bar:
        task = bar.add_task("export", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        written = state.client.results.export(
            job_id, path, format=fmt, progress=progress, csv_formulas=formulas
        )
    if as_json:
        output.emit_json({"job_id": job_id, "format": fmt, "path": str(path), "bytes": written})
    else:
        output.line(f"saved {path} ({output.size(written)}, {fmt})")


COMMANDS = [results, export]
