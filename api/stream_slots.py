"""Open event streams per user: SSE and WebSocket connections share one cap (429 beyond).

Each open stream holds a slot: a member of a Redis sorted set per user whose score is when it
expires. A stream refreshes its slot as it sends (at least every heartbeat) and removes it when
it closes, whichever way; a slot of an API process that died is not refreshed and expires on its
own. All API processes count in the same set, so the cap holds across them.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator

import redis

from api.services import event_log, settings
from shared.errors import RateLimited, Unavailable

logger = logging.getLogger(__name__)

# Atomic take: drop expired slots, count, add ours if there is room. Time is Redis's own, so
# API hosts with skewed clocks agree on what has expired.
_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], t + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
return 1
"""
# A live stream keeps (or gets back) its slot.
_KEEP = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZADD', KEYS[1], t + tonumber(ARGV[1]), ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + 1)
return 1
"""


def key(user_id: str) -> str:
    return f"scrapemaster:streams:{user_id}"


class Slot:
    """One open stream's place in its user's count."""

    def __init__(self, client: redis.Redis, user_id: str, ttl: float):
        self.client, self.key, self.ttl = client, key(user_id), ttl
        self.member = uuid.uuid4().hex
        self.kept_at = time.monotonic()

    def keep(self) -> None:
        """Refresh the slot (cheap to call often: it writes at most every third of its TTL)."""
        now = time.monotonic()
        if now - self.kept_at < self.ttl / 3:
            return
        self.kept_at = now
        try:
            self.client.eval(_KEEP, 1, self.key, self.ttl, self.member)
        except redis.RedisError:
            logger.warning("stream slot %s not refreshed", self.member)

    def release(self) -> None:
        """Give the slot back (idempotent); should Redis be down, it expires by itself."""
        with contextlib.suppress(redis.RedisError):
            self.client.zrem(self.key, self.member)

    def held(self, chunks: Iterator[str]) -> Iterator[str]:
        """`chunks`, refreshing the slot as they go out."""
        for chunk in chunks:
            self.keep()
            yield chunk


def ttl() -> float:
    """How long a slot outlives its last refresh: streams send at least every heartbeat."""
    return max(2.0, 3 * settings().sse_heartbeat_seconds)


def take(user_id: str) -> Slot:
    """A slot for a new stream of `user_id`; RateLimited when STREAMS_MAX_PER_USER are open."""
    limit = settings().streams_max_per_user
    slot = Slot(event_log().client, user_id, ttl())
    try:
        taken = slot.client.eval(_TAKE, 1, slot.key, limit, slot.ttl, slot.member)
    except redis.RedisError:
        raise Unavailable(
            "Live events are unavailable (Redis); try again shortly", headers={"Retry-After": "5"}
        ) from None
    if not taken:
        raise RateLimited(
            f"Too many open event streams: at most {limit} per user, SSE and WebSocket together "
            "(STREAMS_MAX_PER_USER); close one first",
            headers={"Retry-After": str(int(slot.ttl))},
        )
    return slot
