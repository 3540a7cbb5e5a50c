"""Periodic upkeep run by beat: re-enqueue jobs that lost their task or their worker."""

from __future__ import annotations

from celery import shared_task

from shared import tasks
from workers import execution


@shared_task(name=tasks.RECONCILE, ignore_result=True)
def reconcile() -> dict[str, int]:
    """Re-enqueue pending jobs with no message in the broker and running jobs whose worker died."""
    return execution.reconcile()
