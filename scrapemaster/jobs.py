"""Jobs: submit, read, list and page, change, cancel, retry, reset, delete, stats and logs."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from typing import Any

from scrapemaster._paths import params, seg
from scrapemaster.models import TERMINAL_EVENTS, Event, Job, JobList, JobStats, LogLine
from scrapemaster.transport import Transport


class Jobs:
    """`client.jobs`: the `/jobs` endpoints."""

    def __init__(self, transport: Transport, events: Any) -> None:
        self._t = transport
        self._events = events

    def submit(
        self,
        spec: dict[str, Any] | None = None,
        *,
        actions: list[dict[str, Any]] | None = None,
        next_click: str | None = None,
        login: dict[str, Any] | None = None,
        cookies: list[dict[str, Any]] | None = None,
        **fields: Any,
    ) -> Job:
        """POST /jobs: a job body as a dict, or as keywords (`url=…, engine=…, config=…`);
        `actions` (browser steps), `next_click`, `login` ({url, fields, submit,
        success_selector}) and `cookies` ([{name, value, …}]) go into its config."""
        body = {**(spec or {}), **fields}
        extra = {"actions": actions, "next_click": next_click, "login": login, "cookies": cookies}
        extra = {k: v for k, v in extra.items() if v is not None}
        if extra:
            body["config"] = {**(body.get("config") or {}), **extra}
        return self._t.call("POST", "/jobs", json=body)

    def get(self, job_id: str) -> Job:
        """GET /jobs/{id}: status and counters."""
        return self._t.call("GET", f"/jobs/{seg(job_id)}")

    def list(
        self,
        *,
        status: str | None = None,
        engine: str | None = None,
        schedule_id: str | None = None,
        skip: int = 0,
        limit: int = 50,
        sort_by: str | None = None,
        sort_order: str | None = None,
    ) -> JobList:
        """GET /jobs: one page of jobs (newest first by default) and the total matched."""
        query = params(
            status=status,
            engine=engine,
            schedule_id=schedule_id,
            skip=skip,
            limit=limit,
            sort_by=sort_by,
            sort_order=sort_order,
        )
        response = self._t.send("GET", "/jobs", params=query)
        found = response.json()
        total = int(response.headers.get("X-Total-Count", len(found)))
        links = {str(rel): link["url"] for rel, link in response.links.items() if "url" in link}
        return JobList(found, total, skip, limit, links)

    def iterate(self, *, page_size: int = 100, **filters: Any) -> Iterator[Job]:
        """Every job the filters match, fetching one page at a time as you go (pages are
        counted by position: jobs created meanwhile shift them, so sort ascending to walk a
        list that grows)."""
        skip = 0
        while True:
            page = self.list(skip=skip, limit=page_size, **filters)
            yield from page.jobs
            skip += len(page.jobs)
            if not page.jobs or skip >= page.total:
                return

    def update(self, job_id: str, **changes: Any) -> Job:
        """PATCH /jobs/{id}: `priority`, `selectors`, `config` or `url` of a pending job."""
        return self._t.call("PATCH", f"/jobs/{seg(job_id)}", json=changes)

    def cancel(self, job_id: str) -> Job:
        """Stop a pending or running job (items so far are kept)."""
        return self._t.call("POST", f"/jobs/{seg(job_id)}/cancel")

    def retry(self, job_id: str) -> Job:
        """Run a failed or cancelled job again, keeping its items."""
        return self._t.call("POST", f"/jobs/{seg(job_id)}/retry")

    def reset(self, job_id: str) -> Job:
        """Clear a finished job's results and run it again."""
        return self._t.call("POST", f"/jobs/{seg(job_id)}/reset")

    def delete(self, job_id: str) -> None:
        """Stop the job if it runs, then delete it and its results."""
        self._t.call("DELETE", f"/jobs/{seg(job_id)}")

    def delete_many(self, job_ids: builtins.list[str]) -> dict[str, Any]:
        """DELETE /jobs/batch: `{deleted, failed, errors}`."""
        return self._t.call("DELETE", "/jobs/batch", json={"job_ids": list(job_ids)})

    def retry_failed(self) -> int:
        """Retry every failed job of the caller; how many were retried."""
        return int(self._t.call("POST", "/jobs/retry-failed")["retried"])

    def stats(self) -> JobStats:
        """Counts of the caller's jobs by status."""
        return self._t.call("GET", "/jobs/stats")

    def logs(
        self, job_id: str, *, level: str | None = None, limit: int = 100
    ) -> builtins.list[LogLine]:
        """The job's log lines, oldest first (`level`: that level and above)."""
        query = params(level=level, limit=limit)
        return self._t.call("GET", f"/jobs/{seg(job_id)}/logs", params=query)["logs"]

    def wait(self, job_id: str, on_event: Callable[[Event], None] | None = None) -> Job:
        """Follow the job's events until it ends; the finished job. After a retry or reset,
        until the run current now ends (an earlier run's terminal event is not its end)."""
        run = self.get(job_id).get("run")
        with self._events.job(job_id, run=run if isinstance(run, int) else None) as stream:
            for event in stream:
                if on_event:
                    on_event(event)
                if event.get("type") in TERMINAL_EVENTS:
                    break
        return self.get(job_id)
