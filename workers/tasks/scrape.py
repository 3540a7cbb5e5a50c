"""The scrape task: claim the job by id, run its engine, record the outcome."""

from __future__ import annotations

import logging
import os

from celery import Task, shared_task
from pymongo.errors import ConnectionFailure

from shared import tasks
from workers import engines, execution, shutdown

STORE_RETRY_SECONDS = 5


@shared_task(name=tasks.SCRAPE, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def scrape(self: Task, job_id: str) -> None:
    """Run job `job_id` on the engine of the queue this task came from."""
    queue = (self.request.delivery_info or {}).get("routing_key") or tasks.QUEUE_SCRAPY
    try:
        with shutdown.running_job():
            wait = execution.execute(job_id, queue, hostname=self.request.hostname or "worker")
    except ConnectionFailure as exc:
        # MongoDB unreachable (restarting, network): the job is safe there; try again shortly
        # rather than drop the task. A run cut short is taken over once its heartbeat is stale.
        logging.getLogger(__name__).warning("job %s: store unavailable (%s); retrying", job_id, exc)
        raise self.retry(countdown=STORE_RETRY_SECONDS) from None
    stuck = engines.stuck_engine()
    if stuck:
        # The job is recorded (failed: timeout). Leave this process: the pool starts a fresh
        # one; the message, re-delivered because its worker is gone, finds the job finished.
        logging.getLogger(__name__).error("%s: replacing worker process %d", stuck, os.getpid())
        raise SystemExit(f"engine stuck: {stuck}")
    if shutdown.signalled_here() and not shutdown.main_stopping():
        # SIGTERM reached this pool process alone (its main process is not stopping): the job
        # is finished or handed back, so end as the signal asked; the pool starts a fresh one.
        raise SystemExit("SIGTERM")
    if wait:
        # The job is held by a worker that may have just died: look again once it would be stale.
        raise self.retry(countdown=wait)
