"""The scrape task: claim the job by id, run its engine, record the outcome."""

from __future__ import annotations

from celery import Task, shared_task

from shared import tasks
from workers import execution


@shared_task(name=tasks.SCRAPE, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def scrape(self: Task, job_id: str) -> None:
    """Run job `job_id` on the engine of the queue this task came from."""
    queue = (self.request.delivery_info or {}).get("routing_key") or tasks.QUEUE_SCRAPY
    wait = execution.execute(job_id, queue, hostname=self.request.hostname or "worker")
    if wait:
        # The job is held by a worker that may have just died: look again once it would be stale.
        raise self.retry(countdown=wait)
