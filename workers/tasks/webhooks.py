"""The webhook task: one signed delivery attempt, on the `webhooks` queue."""

from __future__ import annotations

from celery import shared_task

from shared import tasks
from workers import delivery


@shared_task(name=tasks.DELIVER_WEBHOOK, acks_late=True, ignore_result=True)
def deliver_webhook(attempt_id: str) -> str:
    """POST the attempt; a failure schedules the next one with back-off."""
    return delivery.deliver(attempt_id)
