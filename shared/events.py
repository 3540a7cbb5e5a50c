"""Job events: one append-only log per job (and one per user) in Redis Streams.

Every job transition and progress tick appends an event `{id, type, job_id, timestamp, data}`
to the job's stream and to its owner's stream. Stream entry ids are the event ids, so a client
that reconnects with `Last-Event-ID` reads exactly what it missed. Streams are capped
(`EVENT_RETENTION_EVENTS` per job) and expire (`EVENT_RETENTION_SECONDS`); MongoDB stays the
source of truth, and a reader rebuilds a finished job's terminal event from the job document
when its stream is gone. Appending never fails the caller: events are a view, not the record.

The events a user is told about (DURABLE: job.started, the terminal ones, job.changed) are
written to MongoDB with the job's state first (shared/outbox.py) and published from there with
`publish`, once per event key: a publish repeated after a crash or an outage returns the id the
event was given the first time, so its webhooks and its stream entry share one id.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import redis

logger = logging.getLogger(__name__)

STARTED = "job.started"
PROGRESS = "job.progress"
LOG = "job.log"
COMPLETED = "job.completed"
FAILED = "job.failed"
CANCELLED = "job.cancelled"
CHANGED = "job.changed"  # a scheduled run's items differ from the previous run's
TYPES = (STARTED, PROGRESS, LOG, COMPLETED, FAILED, CANCELLED, CHANGED)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
# told to users (webhooks): written to MongoDB first, never lost to a Redis outage
DURABLE = frozenset({STARTED, COMPLETED, FAILED, CANCELLED, CHANGED})
TERMINAL_BY_STATUS = {"completed": COMPLETED, "failed": FAILED, "cancelled": CANCELLED}
COUNTERS = ("status", "progress", "items_scraped", "pages_crawled", "items_failed", "schedule_id")
PREFIX = "scrapemaster:events"


def job_stream(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def user_stream(owner_id: str) -> str:
    return f"{PREFIX}:user:{owner_id}"


def published_key(job_id: str) -> str:
    """The hash of a job's published outbox events: event key -> the id it was given."""
    return f"{PREFIX}:published:{job_id}"


def stamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a Z, as every timestamp of the API."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def counters_of(job: dict[str, Any]) -> dict[str, Any]:
    """The figures an event carries, from a job document (or a sink's counters); a scheduled
    job's events name its schedule."""
    return {key: job.get(key) for key in COUNTERS if key in job}


def about(job: dict[str, Any]) -> dict[str, Any]:
    """What every event of `job` says besides its figures: the run it belongs to (1, then +1
    on each retry or reset), and the schedule that started it."""
    found: dict[str, Any] = {"run": job["run"]} if job.get("run") else {}
    if job.get("schedule_id"):
        found["schedule_id"] = job["schedule_id"]
    return found


def run_of(event: dict[str, Any]) -> int | None:
    """The run an event belongs to (None: an event written before events carried it)."""
    run = (event.get("data") or {}).get("run")
    return run if isinstance(run, int) else None


# XADD to the owner's stream with a new id, then to the job's stream with that same id (always
# valid: every id of a job's stream came from its owner's, which only grows)
_APPEND_BOTH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], id, unpack(ARGV, 3))
return id
"""


# Publish one outbox event at most once: KEYS job stream, published hash[, owner's stream];
# ARGV event key, the id it was given before (or ""), job maxlen, owner maxlen, ttl, fields...
# A first publish takes a new id from the owner's stream (as _APPEND_BOTH); one whose id a
# webhook already carries (Redis lost it meanwhile) adds it again under that id where it still
# fits the stream's order (XADD refuses a smaller id: pcall, and that stream goes without).
_PUBLISH = """
local done = redis.call('HGET', KEYS[2], ARGV[1])
if done then return done end
local fields = {unpack(ARGV, 6)}
local id = ARGV[2]
if id == '' then
  if #KEYS == 3 then
    id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', unpack(fields))
    redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], id, unpack(fields))
  else
    id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
  end
else
  redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], id, unpack(fields))
  if #KEYS == 3 then
    redis.pcall('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], id, unpack(fields))
  end
end
redis.call('HSET', KEYS[2], ARGV[1], id)
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return id
"""


class EventLog:
    """Appends and reads job events; one per process, over that process's Redis client."""

    def __init__(
        self,
        client: redis.Redis,
        retention_events: int = 1000,
        retention_seconds: int = 7 * 86400,
    ) -> None:
        self.client = client
        self.retention_events = retention_events
        self.retention_seconds = retention_seconds
        self._both = client.register_script(_APPEND_BOTH)
        self._publish = client.register_script(_PUBLISH)

    @classmethod
    def from_settings(cls, settings: Any) -> EventLog:
        # reads block up to one SSE heartbeat: the socket must wait longer than that
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.sse_heartbeat_seconds + 10,
            socket_connect_timeout=2,
        )
        return cls(client, settings.event_retention_events, settings.event_retention_seconds)

    def append(
        self, job_id: str, owner_id: str | None, type_: str, data: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Add one event to the job's stream and its owner's; the event (its id is the job
        stream's), or None when Redis is unreachable (the job goes on; MongoDB holds it)."""
        added = self.append_many(job_id, owner_id, [(type_, data)])
        return added[0] if added else None

    def append_many(
        self, job_id: str, owner_id: str | None, items: list[tuple[str, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Add several events of one job in one round trip; the events, [] when Redis is down."""
        if not items:
            return []
        when = stamp()
        pipe = self.client.pipeline(transaction=False)
        for type_, data in items:
            fields: dict[Any, Any] = {
                "type": type_,
                "job_id": job_id,
                "timestamp": when,
                "data": json.dumps(data, default=str),
            }
            flat = [part for pair in fields.items() for part in pair]
            if owner_id:
                # one id for the event on both streams: taken from the owner's stream (which
                # orders every job of the owner), then given to the job's, in one script
                self._both(
                    keys=[user_stream(owner_id), job_stream(job_id)],
                    args=[self.retention_events * 10, self.retention_events, *flat],
                    client=pipe,
                )
            else:
                pipe.xadd(
                    job_stream(job_id), fields, maxlen=self.retention_events, approximate=True
                )
        pipe.expire(job_stream(job_id), self.retention_seconds)
        if owner_id:
            pipe.expire(user_stream(owner_id), self.retention_seconds)
        try:
            results = pipe.execute()
        except redis.RedisError:
            logger.warning("job %s: %d events not recorded (Redis unavailable)", job_id, len(items))
            return []
        added = []
        for index, (type_, data) in enumerate(items):
            raw = results[index]
            added.append(
                {
                    "id": raw.decode() if isinstance(raw, bytes) else str(raw),
                    "type": type_,
                    "job_id": job_id,
                    "timestamp": when,
                    "data": data,
                }
            )
        return added

    def publish(
        self,
        job_id: str,
        owner_id: str | None,
        key: str,
        entry: dict[str, Any],
    ) -> str | None:
        """Add an outbox event (`entry`: type, timestamp, data, and the id it was given if it
        was published before) to the job's and the owner's streams once per `key`; its id, or
        None when Redis is unreachable (it stays in the outbox)."""
        fields: dict[str, Any] = {
            "type": entry["type"],
            "job_id": job_id,
            "timestamp": entry["timestamp"],
            "data": json.dumps(entry.get("data") or {}, default=str),
        }
        keys = [job_stream(job_id), published_key(job_id)]
        if owner_id:
            keys.append(user_stream(owner_id))
        args = [
            key,
            entry.get("id") or "",
            self.retention_events,
            self.retention_events * 10,
            self.retention_seconds,
            *(part for pair in fields.items() for part in pair),
        ]
        try:
            raw = self._publish(keys=keys, args=args)
        except redis.RedisError:
            logger.warning(
                "job %s: %s not published yet (Redis unavailable)", job_id, entry["type"]
            )
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def read(
        self, stream: str, after: str, block_ms: int | None = None, count: int = 200
    ) -> list[dict[str, Any]]:
        """Events of `stream` after id `after` ("0": from the start, "$": only new ones),
        waiting up to `block_ms` for the first one."""
        answer: Any = self.client.xread({stream: after}, count=count, block=block_ms)
        events = []
        for _name, entries in answer or []:
            for entry_id, fields in entries:
                events.append(decode(entry_id, fields))
        return events

    def last_id(self, stream: str) -> str:
        """The id of the newest event of `stream` ("0-0" when it has none)."""
        info = self.client.xrevrange(stream, count=1)
        if not info:
            return "0-0"
        entry_id = info[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def delete_job(self, job_id: str) -> None:
        try:
            self.client.delete(job_stream(job_id), published_key(job_id))
        except redis.RedisError:
            logger.warning("job %s: event stream not deleted (Redis unavailable)", job_id)


def decode(entry_id: Any, fields: dict[Any, Any]) -> dict[str, Any]:
    """A stream entry as the event object of API.md."""
    text = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
    return {
        "id": entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id),
        "type": text.get("type"),
        "job_id": text.get("job_id"),
        "timestamp": text.get("timestamp"),
        "data": json.loads(text.get("data") or "{}"),
    }


def terminal_from_job(job: dict[str, Any]) -> dict[str, Any] | None:
    """A finished job's terminal event rebuilt from its document (its stream has expired)."""
    type_ = TERMINAL_BY_STATUS.get(job.get("status", ""))
    if type_ is None:
        return None
    data = {**counters_of(job), **about(job)}
    if job.get("error"):
        data["error"] = job["error"]
    finished = job.get("completed_at")
    if finished is not None and finished.tzinfo is None:
        finished = finished.replace(tzinfo=UTC)
    when = stamp(finished)
    return {"id": "0-1", "type": type_, "job_id": job["_id"], "timestamp": when, "data": data}
