"""The scheduler process: `python -m workers.scheduler` fires due schedules and settles runs.

Every SCHEDULER_TICK_SECONDS it starts the jobs of due schedules (shared/schedules.py: exactly
one run per slot, however many schedulers run) and copies ended jobs' outcomes onto their runs,
comparing each completed run's items with the previous run's (shared/changes.py) and sending
`job.changed` when they differ. Settling runs in its own thread, so comparing a large run never
delays a slot. Run two for availability: they never double-fire. Stops on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from shared import changes, events, outbox, tasks
from shared import db as dbmod
from shared.liveness import Heartbeat
from shared.scheduling import Scheduler
from shared.settings import get_settings

logger = logging.getLogger("scrapemaster.scheduler")


def enqueue(job: dict[str, Any]) -> None:
    from workers import celery

    celery.send_task(tasks.SCRAPE, **tasks.scrape_options(job))


def on_settled(run: dict[str, Any], job: dict[str, Any]) -> dict[str, Any] | None:
    """A scheduled job completed: compare its items with the previous run's; job.changed."""
    from workers import delivery

    database = dbmod.database()
    schedule = database.schedules.find_one({"_id": run["schedule_id"]}, {"key": 1}) or {}
    counts = changes.detect(database, run, job, schedule.get("key"))
    if changes.changed(counts):
        data = {
            **events.counters_of(job),
            "run_id": run["_id"],
            "changes": counts,
            **events.about(job),
        }
        # into the job's outbox first: a Redis outage delays it, never loses it
        written = outbox.add(database, job, events.CHANGED, data)
        if written is not None:
            delivery.publish(job["_id"], written)
    return counts


def build() -> Scheduler:
    settings = get_settings()
    return Scheduler(
        dbmod.database(settings),
        enqueue,
        misfire_seconds=settings.schedule_misfire_seconds,
        on_settled=on_settled,
    )


def _loop(
    name: str, step: Any, interval: float, stop: threading.Event, heart: Heartbeat | None = None
) -> None:
    """Run `step` at every multiple of `interval` on the wall clock: a slot on the minute is
    seen at once (not up to a tick late), and every scheduler looks at the same moments.
    `heart` (the main loop's) touches the liveness file on every turn, failed or not."""
    while not stop.is_set():
        if heart is not None:
            heart.beat()
        try:
            step()
        except Exception:  # the store or the broker is down: try again next time
            logger.exception("%s failed; retrying in %.1f s", name, interval)
        stop.wait(interval - time.time() % interval)


def main() -> None:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s [scheduler] %(name)s: %(message)s",
    )
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        logger.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    dbmod.ensure_indexes(dbmod.database(settings))
    scheduler = build()
    interval = settings.scheduler_tick_seconds
    settler = threading.Thread(
        target=_loop, args=("settle", scheduler.settle, interval, stop), daemon=True
    )
    settler.start()
    logger.info("scheduler ready: ticking every %.1f s", interval)
    _loop("tick", scheduler.tick, interval, stop, Heartbeat.from_settings(settings))
    settler.join(timeout=30)
    dbmod.close_all()
    logger.info("scheduler stopped")


if __name__ == "__main__":
    main()
