"""Celery workers: `celery -A workers worker -Q scrapy` (or playwright) runs jobs."""

from workers.app import create_celery

celery = create_celery()

from workers import signals  # noqa: E402,F401  (connects worker signal handlers)
