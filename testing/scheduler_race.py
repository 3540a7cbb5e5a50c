"""Two scheduler processes racing over one schedule (tests/e2e/test_scheduler_race.py).

The schedule fires every 10 seconds (`CRON`: cronsim reads a leading sixth field as seconds;
the API only takes five fields, the scheduler runs whatever cron the schedule holds), so a
minute of racing gives six slots where a `* * * * *` schedule would need six minutes.
Schedulers tick at the same wall-clock moments (multiples of SCHEDULER_TICK_SECONDS), so at
every slot both see it due at once and race to record it.

`make test` hands that file out first (tests/conftest.py). Midway one scheduler is killed hard
(SIGKILL: no handler runs, whatever it was doing is cut off) and started again."""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from shared import jobs
from shared.db import ensure_indexes
from shared.schedules import OVERLAP_ALLOW, ScheduleRepository
from testing.helpers import Stack, wait_for

CRON = "*/10 * * * * *"  # every 10 s: second minute hour day-of-month month day-of-week
SLOT_SECONDS = 10
RACE_SECONDS = 70  # seven slots
KILL_AFTER_SECONDS = 35  # midway


class SchedulerRace:
    def __init__(self, redis_url: str, mongo_url: str, workdir: Path) -> None:
        self.stack = Stack(redis_url, mongo_url, f"race_{uuid.uuid4().hex[:8]}", workdir)
        self.killer: threading.Timer | None = None
        self.restarted = threading.Event()
        self.began: datetime | None = None
        self.schedule: Any = {}

    def start(self) -> None:
        redis.Redis.from_url(self.stack.redis_url).flushdb()
        database = self.stack.database()
        ensure_indexes(database)
        self.began = jobs.now()
        body = {
            "name": "race",
            "cron": CRON,
            "timezone": "UTC",
            "overlap": OVERLAP_ALLOW,  # no worker runs the jobs: every slot must start one
            "job": {"url": "http://127.0.0.1:9/", "urls": ["http://127.0.0.1:9/"]},
        }
        self.schedule = ScheduleRepository(database).create("race-owner", body, self.began)
        for name in ("scheduler-a", "scheduler-b"):
            self._spawn(name)
        self.killer = threading.Timer(KILL_AFTER_SECONDS, self._kill_and_restart)
        self.killer.daemon = True
        self.killer.start()

    def _spawn(self, name: str) -> None:
        self.stack.spawn(
            name, [sys.executable, "-m", "workers.scheduler"], SCHEDULER_TICK_SECONDS="1"
        )

    def _kill_and_restart(self) -> None:
        proc = self.stack.procs.get("scheduler-a")
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        self._spawn("scheduler-a")
        self.restarted.set()

    def readies(self, name: str) -> int:
        log = self.stack.logs.get(name)
        return log.read_text(errors="replace").count("scheduler ready") if log else 0

    def wait_until(self, moment: datetime) -> None:
        wait_for(lambda: jobs.now() >= moment, 200, interval=1, message=f"clock at {moment}")

    def stop(self) -> None:
        if self.killer is not None:
            self.killer.cancel()
        self.stack.stop()
