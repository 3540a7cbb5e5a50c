"""Politeness across the fleet: per-site request slots and spacing shared through Redis.

Every worker process and job of both engines asks here before it sends a request to a site,
so the site sees at most `DOMAIN_CONCURRENCY` requests at once from the whole fleet and
`DOMAIN_DELAY_SECONDS` (or the robots.txt `Crawl-delay`, whichever is larger) between them.

Per site (`site_key`: the registered domain; an IP address or a dotless host such as
`localhost` is keyed with its port) Redis keeps, under `politeness:{site}:`:
- `leases` (sorted set, token -> expiry ms): the slots in use. A holder renews its leases
  while the request runs; a worker that dies mid-request loses its slot when the lease
  expires (DOMAIN_LEASE_SECONDS), so no slot is lost for good.
- `queue` (sorted set, token -> ticket order) and `alive` (token -> expiry ms): the waiting
  requests. A ticket's order is its job's next round (`rounds`, a hash job -> last round):
  each waiting job gets one turn per round, in arrival order within the round, so a job
  with many waiting requests cannot take every free slot (round robin, not first come).
- `state` (hash): `vnow`, the round last granted; `next`, when the next grant may happen
  (the delay); `seq`, arrival order.
Only the head of the queue may take a slot. A waiter blocks on its own list
(`politeness:wake:{token}`, BLPOP), which a release, a grant or a departure pushes to when it
becomes the head; its timeout is the known time until the next lease expiry or delay end, so
nobody polls. Each step is one Lua script (one round trip, atomic).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.settings import Settings, get_settings

logger = logging.getLogger(__name__)

PREFIX = "politeness"
SEQ_SPAN = 1 << 20  # arrival order within one round (wraps after a million waiters)
MAX_BLOCK_MS = 5_000  # longest single block of a waiter that is not at the head
ALIVE_MARGIN_MS = 15_000  # a waiter silent this long after its block is taken for dead
IDLE_EXPIRE_MS = 3_600_000  # a site's keys go after an hour without requests
MAX_CRAWL_DELAY = 60.0  # robots.txt Crawl-delay is honoured up to this (the job maximum)

# KEYS: leases, queue, alive, state, rounds
# ARGV: token, job, (unused), limit, delay_ms, lease_ms, seq span, max block ms, alive margin
# ms, idle expiry ms, wake key prefix -> {1, 0} granted, or {0, ms to wait at most}
_TRY = """
local leases, queue, alive, state, rounds = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local token, job = ARGV[1], ARGV[2]
local clock = redis.call('TIME')  -- the server's clock: workers' clocks may disagree
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local limit = tonumber(ARGV[4])
local delay, lease = tonumber(ARGV[5]), tonumber(ARGV[6])
local span, maxblock, margin, idle = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]),
  tonumber(ARGV[10])
local wake = ARGV[11]
local purged = redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', alive, '-inf', now)
for _, t in ipairs(dead) do
  redis.call('ZREM', queue, t)
  redis.call('ZREM', alive, t)
  purged = purged + 1
end
if not redis.call('ZSCORE', queue, token) then
  local vnow = tonumber(redis.call('HGET', state, 'vnow') or '0')
  local last = tonumber(redis.call('HGET', rounds, job) or '0')
  local round = math.max(vnow, last) + 1
  redis.call('HSET', rounds, job, round)
  local seq = redis.call('HINCRBY', state, 'seq', 1) % span
  redis.call('ZADD', queue, round * span + seq, token)
end
redis.call('ZADD', alive, now + maxblock + margin, token)
local head = redis.call('ZRANGE', queue, 0, 0)[1]
local nxt = tonumber(redis.call('HGET', state, 'next') or '0')
local used = redis.call('ZCARD', leases)
for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, idle) end
if head == token and used < limit and now >= nxt then
  local score = tonumber(redis.call('ZSCORE', queue, token))
  local round = math.floor(score / span)
  redis.call('ZREM', queue, token)
  redis.call('ZREM', alive, token)
  redis.call('ZADD', leases, now + lease, token)
  redis.call('HSET', state, 'vnow', round)
  if delay > 0 then redis.call('HSET', state, 'next', now + delay) end
  if tonumber(redis.call('HGET', rounds, job) or '0') <= round then
    redis.call('HDEL', rounds, job)  -- its last ticket: vnow stands for it from now on
  end
  local after = redis.call('ZRANGE', queue, 0, 0)[1]
  if after then
    redis.call('LPUSH', wake .. after, 1)
    redis.call('PEXPIRE', wake .. after, maxblock + margin)
  end
  return {1, 0}
end
if purged > 0 and head and head ~= token then
  redis.call('LPUSH', wake .. head, 1)
  redis.call('PEXPIRE', wake .. head, maxblock + margin)
end
local wait = maxblock
if head == token then
  if used >= limit then
    local first = redis.call('ZRANGE', leases, 0, 0, 'WITHSCORES')
    wait = math.min(wait, tonumber(first[2]) - now + 1)
  else
    wait = math.min(wait, nxt - now)
  end
end
return {0, math.max(wait, 1)}
"""

# KEYS: leases, queue, alive; ARGV: token, wake prefix, block ms — a slot or a place given up
_LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', ARGV[2] .. ARGV[1])
local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
if head then
  redis.call('LPUSH', ARGV[2] .. head, 1)
  redis.call('PEXPIRE', ARGV[2] .. head, tonumber(ARGV[3]))
end
return 1
"""

# KEYS: leases; ARGV: lease ms, tokens... — extend the leases still held (XX: never revive)
_RENEW = """
local clock = redis.call('TIME')
local expiry = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) + ARGV[1]
local n = 0
for i = 2, #ARGV do n = n + redis.call('ZADD', KEYS[1], 'XX', 'CH', expiry, ARGV[i]) end
return n
"""


@lru_cache(maxsize=1)
def _extractor() -> Any:
    from tldextract import TLDExtract

    # the snapshot tldextract ships: no download, ever (the service sends no request of its own)
    return TLDExtract(suffix_list_urls=(), include_psl_private_domains=True, cache_dir=None)


def site_key(url: str) -> str:
    """The site a request counts against: its registered domain (`shop.example.co.uk` ->
    `example.co.uk`); an IP address or a host without a public suffix (`localhost`) is its
    own site per port (`127.0.0.1:8080`), since two ports there are usually two servers."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    extracted = _extractor()(host)
    registered = extracted.top_domain_under_public_suffix
    if not registered:
        return f"{host}:{port}"
    return str(registered)


def effective_delay(setting_seconds: float, crawl_delay: float | None) -> float:
    """Seconds between two requests to a site: DOMAIN_DELAY_SECONDS, or the robots.txt
    Crawl-delay when that is larger (up to MAX_CRAWL_DELAY)."""
    extra = min(float(crawl_delay or 0.0), MAX_CRAWL_DELAY)
    return max(float(setting_seconds), extra, 0.0)


def fair_order(arrivals: list[str]) -> list[str]:
    """The order in which waiting requests of `arrivals` (job ids, in arrival order, all
    waiting at once) get slots: the queue's rule, in pure Python (docs and tests)."""
    last: dict[str, int] = {}
    tickets = []
    for seq, job in enumerate(arrivals):
        last[job] = last.get(job, 0) + 1
        tickets.append((last[job], seq, job))
    return [job for _, _, job in sorted(tickets)]


@dataclass(frozen=True)
class Limits:
    concurrency: int
    delay_seconds: float
    lease_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            concurrency=int(settings.domain_concurrency),
            delay_seconds=float(settings.domain_delay_seconds),
            lease_seconds=float(settings.domain_lease_seconds),
        )

    @property
    def off(self) -> bool:
        """DOMAIN_CONCURRENCY=0 and no delay: nothing to share, Redis is not asked."""
        return self.concurrency <= 0 and self.delay_seconds <= 0


class Politeness:
    """One event loop's client of the shared slots (an engine makes one per loop)."""

    def __init__(self, redis_url: str, limits: Limits) -> None:
        self.limits = limits
        # connect fast or not at all; no read timeout: a waiter blocks (BLPOP) up to 5 s
        self.client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=2)
        self._warned = False
        self._try = self.client.register_script(_TRY)
        self._leave = self.client.register_script(_LEAVE)
        self._renew = self.client.register_script(_RENEW)
        self._held: dict[str, set[str]] = {}  # site -> tokens: renewed while requests run
        self._renewer: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Politeness:
        settings = settings or get_settings()
        return cls(settings.redis_url, Limits.from_settings(settings))

    @staticmethod
    def _keys(site: str) -> list[str]:
        base = f"{PREFIX}:{{{site}}}:"
        return [base + name for name in ("leases", "queue", "alive", "state", "rounds")]

    @contextlib.asynccontextmanager
    async def slot(
        self, url: str, job: str, crawl_delay: float | None = None
    ) -> AsyncIterator[None]:
        """Hold one of the site's shared slots while the body runs (a request)."""
        if self.limits.off and not crawl_delay:
            yield
            return
        site = site_key(url)
        delay = effective_delay(self.limits.delay_seconds, crawl_delay)
        token: str | None = None
        try:
            token = await self.acquire(site, job, delay)
            self._warned = False
        except (RedisError, OSError) as exc:
            # Redis unreachable (the broker too, then): the job keeps its own limits rather
            # than failing its pages; said once per outage
            if not self._warned:
                self._warned = True
                logger.warning("politeness: Redis unreachable, site slots not shared: %s", exc)
        try:
            yield
        finally:
            if token is not None:
                with contextlib.suppress(RedisError, OSError):  # the lease expires by itself
                    await self.release(site, token)

    async def acquire(self, site: str, job: str, delay_seconds: float) -> str:
        """Wait for the site's turn of `job`; the lease token to release."""
        token = uuid.uuid4().hex
        keys = self._keys(site)
        wake = f"{PREFIX}:wake:"
        limit = self.limits.concurrency if self.limits.concurrency > 0 else 1_000_000
        lease_ms = max(1, int(self.limits.lease_seconds * 1000))
        try:
            while True:
                got, wait_ms = await self._try(
                    keys=keys,
                    args=[
                        token,
                        job,
                        0,
                        limit,
                        int(delay_seconds * 1000),
                        lease_ms,
                        SEQ_SPAN,
                        MAX_BLOCK_MS,
                        ALIVE_MARGIN_MS,
                        IDLE_EXPIRE_MS,
                        wake,
                    ],
                )
                if int(got):
                    break
                # woken by a release or a grant ahead, or at the known expiry / delay end
                await self.client.blpop([wake + token], timeout=max(int(wait_ms), 1) / 1000)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    self._leave(keys=keys[:3], args=[token, wake, MAX_BLOCK_MS + ALIVE_MARGIN_MS])
                )
            raise
        self._held.setdefault(site, set()).add(token)
        self._ensure_renewer()
        return token

    async def release(self, site: str, token: str) -> None:
        """Give the slot back and wake the next waiter."""
        held = self._held.get(site)
        if held is not None:
            held.discard(token)
            if not held:
                del self._held[site]
        await self._leave(
            keys=self._keys(site)[:3],
            args=[token, f"{PREFIX}:wake:", MAX_BLOCK_MS + ALIVE_MARGIN_MS],
        )

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        """Extend the leases of requests still running, every third of a lease."""
        period = max(self.limits.lease_seconds / 3, 0.05)
        while self._held:
            await asyncio.sleep(period)
            lease_ms = int(self.limits.lease_seconds * 1000)
            for site, tokens in list(self._held.items()):
                if tokens:
                    with contextlib.suppress(Exception):
                        await self._renew(keys=self._keys(site)[:1], args=[lease_ms, *tokens])

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        await self.client.aclose()


_loop_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Politeness] = (
    weakref.WeakKeyDictionary()
)


def for_this_loop(settings: Settings | None = None) -> Politeness:
    """The running event loop's client (an engine's loop: Scrapy's reactor, the browser's):
    one connection pool and one lease renewer per loop, gone with the loop."""
    loop = asyncio.get_running_loop()
    found = _loop_clients.get(loop)
    if found is None:
        found = _loop_clients[loop] = Politeness.from_settings(settings)
    return found
