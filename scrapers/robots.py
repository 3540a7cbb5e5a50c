"""robots.txt kept per origin in a worker process for ROBOTS_CACHE_SECONDS.

Scrapy reads a site's robots.txt once per crawler, and the browser engine once per job: a
schedule that runs every minute fetched it 1,440 times a day, and a one-page job spent a
round trip to the site on it. Both engines keep what they fetched here, by engine and origin
(scheme, host and port), for ROBOTS_CACHE_SECONDS (default 300; 0: every job fetches again).
The pages themselves are still fetched through the target policy; only the rules are kept.
Scrapy's side is scrapers/scrapy_robots.py; the browser's, rendering._Robots.
"""

from __future__ import annotations

import threading
from typing import Any

from cachetools import TTLCache

from shared.settings import get_settings

MAX_ORIGINS = 4096
_lock = threading.Lock()
_cache: TTLCache | None = None
MISSING = object()  # recall(): nothing kept


def _store() -> TTLCache | None:
    global _cache
    ttl = float(get_settings().robots_cache_seconds)
    if ttl <= 0:
        return None
    if _cache is None or _cache.ttl != ttl:
        _cache = TTLCache(maxsize=MAX_ORIGINS, ttl=ttl)
    return _cache


def recall(engine: str, origin: str) -> Any:
    """What `engine` kept for `origin` (its robots.txt body, or None: allow everything), or
    `MISSING` when nothing is kept."""
    with _lock:
        store = _store()
        return MISSING if store is None else store.get((engine, origin), MISSING)


def keep(engine: str, origin: str, body: Any) -> None:
    with _lock:
        store = _store()
        if store is not None:
            store[(engine, origin)] = body
