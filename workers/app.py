"""The Celery application: Redis broker, one queue per engine, late acknowledgement."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from shared import tasks
from shared.settings import Settings, get_settings


def create_celery(settings: Settings | None = None) -> Celery:
    """A Celery app configured from `settings` (default: the environment)."""
    settings = settings or get_settings()
    app = Celery(
        "scrapemaster",
        include=[
            "workers.tasks.scrape",
            "workers.tasks.maintenance",
            "workers.tasks.webhooks",
            "workers.tasks.preview",
        ],
    )
    app.conf.update(
        broker_url=settings.redis_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options=tasks.broker_transport_options(settings.max_timeout_seconds),
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=tasks.QUEUE_MAINTENANCE,
        task_queues=[Queue(name) for name in tasks.QUEUES],
        task_default_priority=tasks.celery_priority(5),
        task_serializer="json",
        accept_content=["json"],
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        # One active beat per deployment: RedBeat keeps the schedule in Redis behind a lock;
        # a second beat waits for the lock and takes over when the first dies.
        beat_scheduler="workers.liveness:LivenessRedBeatScheduler",
        worker_consumer="workers.liveness:LivenessConsumer",  # LIVENESS_FILE while reconnecting
        redbeat_redis_url=settings.redis_url,
        redbeat_key_prefix="scrapemaster:beat",
        redbeat_lock_timeout=settings.beat_lock_timeout_seconds,
        beat_max_loop_interval=min(5.0, settings.beat_lock_timeout_seconds / 3),
        # Maintenance runs on its own queue, so it never waits behind crawls.
        beat_schedule={
            "reconcile-jobs": {
                "task": tasks.RECONCILE,
                "schedule": settings.reconcile_interval_seconds,
                "options": {
                    "queue": tasks.QUEUE_MAINTENANCE,
                    "expires": max(1.0, settings.reconcile_interval_seconds * 3),
                },
            },
            "check-counters": {
                "task": tasks.CHECK_COUNTERS,
                "schedule": settings.counter_check_seconds,
                "options": {
                    "queue": tasks.QUEUE_MAINTENANCE,
                    "expires": max(1.0, settings.counter_check_seconds - 5),
                },
            },
            "apply-retention": {
                "task": tasks.APPLY_RETENTION,
                "schedule": settings.retention_interval_seconds,
                "options": {
                    "queue": tasks.QUEUE_MAINTENANCE,
                    "expires": max(1.0, settings.retention_interval_seconds - 5),
                },
            },
            "check-proxies": {
                "task": tasks.CHECK_PROXIES,
                "schedule": settings.proxy_check_interval_seconds,
                "options": {
                    "queue": tasks.QUEUE_MAINTENANCE,
                    "expires": max(1.0, settings.proxy_check_interval_seconds - 5),
                },
            },
        },
        timezone="UTC",
    )
    from workers.liveness import LivenessStep

    app.steps["worker"].add(LivenessStep)  # LIVENESS_FILE, touched from the event loop
    # No settings object in app.conf: Celery's `conf` inspect command (and so Flower's worker
    # page) shows the whole configuration to whoever can reach them.
    return app
