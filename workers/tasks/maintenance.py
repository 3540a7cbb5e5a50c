"""Periodic upkeep run by beat: re-enqueue lost jobs, bring recovered proxies back."""

from __future__ import annotations

from celery import shared_task

from shared import tasks
from workers import reconcile as upkeep


@shared_task(name=tasks.RECONCILE, ignore_result=True)
def reconcile() -> dict[str, int]:
    """Re-enqueue pending jobs with no message in the broker and running jobs whose worker died."""
    return upkeep.reconcile()


@shared_task(name=tasks.CHECK_PROXIES, ignore_result=True)
def check_proxies() -> dict[str, int]:
    """Probe banned and cooling proxies; recovered ones become active again."""
    return upkeep.check_proxies()


@shared_task(name=tasks.CHECK_COUNTERS, ignore_result=True)
def check_counters() -> dict[str, int]:
    """Recount the job counters; correct the ones a process that died mid-write left off."""
    return upkeep.check_counters()


@shared_task(name=tasks.APPLY_RETENTION, ignore_result=True)
def apply_retention() -> dict[str, int]:
    """Delete finished jobs older than JOB_RETENTION_DAYS with their items and logs."""
    return upkeep.apply_retention()
