"""Worker life-cycle hooks: logging, indexes, per-process clients, engine shutdown."""

from __future__ import annotations

import logging
import os

from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)

from shared import db
from shared.settings import get_settings
from workers import shutdown  # noqa: F401  (its shared memory must exist before the pool forks)


@setup_logging.connect
def configure_logging(**_: object) -> None:
    logging.basicConfig(
        level=get_settings().log_level,
        format="%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s",
    )


@worker_init.connect
def preload_engines(**_: object) -> None:
    # Import the engines once in the parent: forked children share the pages and the first
    # job of each child does not pay ~1 s of imports. Reactors and browsers start after fork.
    import playwright.async_api  # noqa: F401
    import scrapy.crawler  # noqa: F401

    import scrapers.scrapy_engine  # noqa: F401


@worker_ready.connect
def prepare_database(**_: object) -> None:
    try:
        db.ensure_indexes(db.database())
    finally:
        db.close_all()  # the parent must not hand its client to forked children


@worker_process_init.connect
def open_clients(**_: object) -> None:
    # pymongo is not fork-safe: drop whatever the parent had, connect lazily in this child.
    db.close_all()
    logging.getLogger(__name__).debug("worker process %s ready", os.getpid())


@worker_process_shutdown.connect
def close_engines(**_: object) -> None:
    from workers import engines

    engines.shutdown_engines()
