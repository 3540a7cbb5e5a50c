"""Results: pages of a job's items, a lazy iterator over all of them, and streamed exports."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import httpx

from scrapemaster._paths import seg
from scrapemaster.errors import ConnectionFailed
from scrapemaster.models import Item, ResultsPage
from scrapemaster.transport import Transport

EXPORT_FORMATS = ("json", "csv", "jsonl")
MAX_PAGE = 1000  # the API's largest `limit` for /results
Progress = Callable[[int, int | None], None]


class Results:
    """`client.results`: the `/results` endpoints."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def page(self, job_id: str, *, skip: int = 0, limit: int = 100) -> ResultsPage:
        """GET /results/{job_id}: `{total, skip, limit, results}`, in scraping order."""
        query = {"skip": skip, "limit": limit}
        return self._t.call("GET", f"/results/{seg(job_id)}", params=query)

    def iterate(self, job_id: str, *, page_size: int = 500, skip: int = 0) -> Iterator[Item]:
        """Every item of the job from `skip` on, fetching the next page only when needed."""
        page_size = max(1, min(page_size, MAX_PAGE))
        while True:
            page = self.page(job_id, skip=skip, limit=page_size)
            rows = page.get("results") or []
            yield from rows
            skip += len(rows)
            if len(rows) < page_size or skip >= int(page.get("total", 0)):
                return

    def export(
        self,
        job_id: str,
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        format: str = "json",
        progress: Progress | None = None,
        chunk_size: int = 64 * 1024,
        csv_formulas: str = "escape",
    ) -> int:
        """Download every item as json, csv or jsonl into `dest` (a path or a binary file),
        streamed, calling `progress(bytes_so_far, total_or_None)`; the bytes written.

        A path is written as `<path>.part` and renamed when complete, so an interrupted
        download never leaves a file that looks whole. A CSV's cells that a spreadsheet would
        run as a formula get a leading ' unless `csv_formulas="raw"`."""
        if format not in EXPORT_FORMATS:
            raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
        if csv_formulas not in ("escape", "raw"):
            raise ValueError("csv_formulas must be escape or raw")
        params = {"format": format}
        if format == "csv":
            params["csv_formulas"] = csv_formulas
        path = None if hasattr(dest, "write") else Path(dest)  # type: ignore[arg-type]
        with self._t.stream("GET", f"/results/{seg(job_id)}/export", params=params) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            chunks = _chunks(response, chunk_size)
            if path is None:
                return _copy(chunks, dest, progress, total)  # type: ignore[arg-type]
            part = path.with_name(path.name + ".part")
            try:
                with open(part, "wb") as out:
                    written = _copy(chunks, out, progress, total)
                os.replace(part, path)
            finally:
                part.unlink(missing_ok=True)
            return written


def _chunks(response: httpx.Response, size: int) -> Iterator[bytes]:
    try:
        yield from response.iter_bytes(size)
    except httpx.TransportError as exc:
        raise ConnectionFailed(f"the download broke off: {exc or type(exc).__name__}") from exc


def _copy(
    chunks: Iterator[bytes], out: IO[bytes], progress: Progress | None, total: int | None
) -> int:
    written = 0
    if progress:
        progress(0, total)
    for chunk in chunks:
        out.write(chunk)
        written += len(chunk)
        if progress:
            progress(written, total)
    return written
