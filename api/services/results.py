"""Items of a job: pages of results, and exports streamed straight from a MongoDB cursor."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from api.schemas import UTCDateTime
from api.services import db
from api.services.jobs import get as get_job
from shared import items
from shared.jobspec import content_formats
from shared.users import UserDoc

_stamp = UTCDateTime()


def page(job_id: str, user: UserDoc, skip: int, limit: int) -> dict[str, Any]:
    job = get_job(job_id, user)
    total = int(job.get("items_scraped") or 0)  # a running job's: up to a progress tick behind
    rows = items.page(db(), job_id, skip, limit, total)
    return {"job_id": job_id, "total": total, "skip": skip, "limit": limit, "results": rows}


def _rows(job_id: str) -> Iterator[dict[str, Any]]:
    return items.iterate(db(), job_id)


def _plain(row: dict[str, Any], job_id: str) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "url": row.get("url"),
        "data": row.get("data") or {},
        "scraped_at": _stamp._serialize(row.get("scraped_at"), None, None),
    }


def _json(job_id: str) -> Iterator[str]:
    yield "["
    first = True
    for row in _rows(job_id):
        yield ("\n" if first else ",\n") + json.dumps(_plain(row, job_id), ensure_ascii=False)
        first = False
    yield "\n]\n"


def _jsonl(job_id: str) -> Iterator[str]:
    for row in _rows(job_id):
        yield json.dumps(_plain(row, job_id), ensure_ascii=False) + "\n"


# OWASP's CSV injection rule: a spreadsheet runs a cell that starts with one of these as a
# formula (=HYPERLINK, DDE `-2+3+cmd|...`), so such a cell gets a leading ' to stay text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: Any) -> Any:
    """`value` as a spreadsheet shows it and never runs it; numbers and other text unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _csv(job_id: str, fields: list[str], raw: bool) -> Iterator[str]:
    meta = [name for name in ("url", "scraped_at") if name not in fields]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    safe = (lambda v: v) if raw else defuse
    writer.writerow([safe(name) for name in fields + meta])  # selector names are the user's
    for count, row in enumerate(_rows(job_id), start=1):
        data = row.get("data") or {}
        plain = _plain(row, job_id)
        cells = [_cell(data.get(name)) for name in fields] + [plain[m] for m in meta]
        writer.writerow([safe(cell) for cell in cells])
        if count % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


CONTENT_TYPES = {
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
}


def export(
    job_id: str, user: UserDoc, fmt: str, raw_formulas: bool = False
) -> tuple[Iterator[str], str]:
    """(chunks, content type) of the export; the job must be visible to `user`. A CSV's cells
    are defused (`defuse`) unless `raw_formulas`; JSON and JSONL are always as scraped."""
    job = get_job(job_id, user)
    if fmt == "csv":
        fields = list(job.get("selectors") or {}) or ["title"]
        output = content_formats(job.get("config") or {})
        if output:  # page content: one row per page, its formats as columns
            fields = list(dict.fromkeys(["title", *output, *fields]))
        return _csv(job_id, fields, raw_formulas), CONTENT_TYPES[fmt]
    if fmt == "jsonl":
        return _jsonl(job_id), CONTENT_TYPES[fmt]
    return _json(job_id), CONTENT_TYPES[fmt]
