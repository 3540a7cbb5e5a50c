"""Schedules: cron-started jobs, runs now, the history of runs and what changed between them."""

from __future__ import annotations

import builtins
from typing import Any

from scrapemaster._paths import params, seg
from scrapemaster.models import ChangesPage, HistoryPage, RunStarted, Schedule
from scrapemaster.transport import Transport


class Schedules:
    """`client.schedules`: the `/schedules` endpoints."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(
        self,
        name: str,
        cron: str,
        job: dict[str, Any],
        *,
        timezone: str | None = None,
        enabled: bool | None = None,
        overlap: str | None = None,
        key: str | None = None,
    ) -> Schedule:
        """POST /schedules: start `job` (a POST /jobs body) at the slots of a five-field cron."""
        body: dict[str, Any] = {"name": name, "cron": cron, "job": job}
        body.update(params(timezone=timezone, enabled=enabled, overlap=overlap, key=key))
        return self._t.call("POST", "/schedules", json=body)

    def list(self) -> builtins.list[Schedule]:
        """The caller's schedules, newest first."""
        return self._t.call("GET", "/schedules")

    def get(self, schedule_id: str) -> Schedule:
        return self._t.call("GET", f"/schedules/{seg(schedule_id)}")

    def update(self, schedule_id: str, **changes: Any) -> Schedule:
        """PATCH `name`, `cron`, `timezone`, `enabled`, `overlap`, `key` or `job`."""
        return self._t.call("PATCH", f"/schedules/{seg(schedule_id)}", json=changes)

    def delete(self, schedule_id: str) -> None:
        """Delete it; its history and the jobs it started stay."""
        self._t.call("DELETE", f"/schedules/{seg(schedule_id)}")

    def run(self, schedule_id: str) -> RunStarted:
        """Start a manual run now: `{job_id, run_id, status}`."""
        return self._t.call("POST", f"/schedules/{seg(schedule_id)}/run")

    def history(
        self,
        *,
        schedule_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        skip: int = 0,
    ) -> HistoryPage:
        """Runs, newest slot first: `{runs, total, limit, skip}`."""
        query = params(schedule_id=schedule_id, status=status, limit=limit, skip=skip)
        return self._t.call("GET", "/schedules/history", params=query)

    def changes(
        self,
        schedule_id: str,
        *,
        run: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        skip: int = 0,
    ) -> ChangesPage:
        """Items added, removed or changed in a run (default: the newest compared run)."""
        query = params(run=run, kind=kind, limit=limit, skip=skip)
        return self._t.call("GET", f"/schedules/{seg(schedule_id)}/changes", params=query)
