"""Extension objects created once and bound to the app in create_app."""

from __future__ import annotations

from celery import Celery
from flask_jwt_extended import JWTManager

from shared import tasks
from shared.settings import Settings

jwt = JWTManager()


def make_celery_client(settings: Settings) -> Celery:
    """A Celery app used only to send tasks by name (the API never imports the workers)."""
    client = Celery("scrapemaster-api")
    client.conf.update(
        broker_url=settings.redis_url,
        broker_transport_options=tasks.broker_transport_options(settings.max_timeout_seconds),
        broker_connection_timeout=2,
        broker_connection_retry=False,
        broker_connection_max_retries=1,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        task_ignore_result=True,
        task_serializer="json",
        task_send_sent_event=True,
    )
    return client
