"""This worker process's warm parts: its engine instances and its event log (made after fork)."""

from __future__ import annotations

import logging
import os

from scrapers.engine import Engine
from shared.events import EventLog
from shared.settings import get_settings

logger = logging.getLogger(__name__)

_engines: dict[str, Engine] = {}


_event_logs: dict[int, EventLog] = {}


def event_log() -> EventLog:
    """This process's event log (made after fork: a Redis client is per process)."""
    pid = os.getpid()
    if pid not in _event_logs:
        _event_logs.clear()
        _event_logs[pid] = EventLog.from_settings(get_settings())
    return _event_logs[pid]


def engine_for(name: str) -> Engine:
    """This process's engine instance of `name` (engines keep warm state across jobs)."""
    if name not in _engines:
        if name == "spider":
            from scrapers.spider_engine import SpiderEngine

            _engines[name] = SpiderEngine(get_settings())
        elif name == "playwright":
            from scrapers.playwright_engine import PlaywrightEngine

            _engines[name] = PlaywrightEngine(get_settings())
        else:
            from scrapers.scrapy_engine import ScrapyEngine

            _engines[name] = ScrapyEngine(get_settings().engine_stuck_grace_seconds)
    return _engines[name]


def stuck_engine() -> str | None:
    """Why this process can no longer run jobs (an engine's thread is stuck), or None."""
    for engine in _engines.values():
        if engine.stuck:
            return engine.stuck
    return None


def shutdown_engines() -> None:
    """Close this process's engines (worker child exit); the reactor thread dies with it."""
    for engine in list(_engines.values()):
        try:
            engine.close()
        except Exception:  # shutting down: log, keep closing the rest
            logger.exception("closing engine %s failed", engine)
    _engines.clear()
