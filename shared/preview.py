"""Selector preview: the job body a worker runs for one page, and the Redis hand-over of its
answer (the API waits on a per-preview list; the worker pushes to it; both expire)."""

from __future__ import annotations

import json
from typing import Any

import redis

from shared.actions import browser_required, required_decision

PREFIX = "scrapemaster:preview"
MAX_BYTES = 256 * 1024  # of the items in one answer; beyond, the list is cut (truncated)
MAX_CHARS = 1000  # of one string in a previewed item (the job itself keeps MAX_FIELD_BYTES)
MAX_LIST = 20  # values of one multi-valued field shown
MAX_LOGS = 50
KEY_TTL = 120  # seconds: nobody reads a preview's answer later than this

STARTED, HANDOFF, DONE = "started", "handoff", "done"


def answer_key(preview_id: str) -> str:
    """The list the API waits on (BLPOP) and the worker pushes to."""
    return f"{PREFIX}:{preview_id}:answer"


def open_key(preview_id: str) -> str:
    """Exists while the API still waits for a worker to take the preview: the worker that
    deletes it owns the preview (so a late or repeated delivery does nothing)."""
    return f"{PREFIX}:{preview_id}:open"


def job_body(spec: dict[str, Any], timeout_seconds: float) -> dict[str, Any]:
    """What a worker runs: the job's first URL, one page, no link following, at most
    `timeout_seconds` (the job's own limits otherwise)."""
    config = dict(spec.get("config") or {})
    config.update(
        max_pages=1,
        follow_links=False,
        concurrency=1,
        download_delay=0,
        timeout_seconds=max(1, min(int(config.get("timeout_seconds") or 300), timeout_seconds)),
    )
    engine = spec.get("engine", "auto")
    needs = browser_required(config)
    body: dict[str, Any] = {}
    if engine == "auto" and needs:  # the actions run, so the preview shows the page after them
        engine = "playwright"
        body["auto_reason"] = f"auto: {required_decision(needs)['reason']}"
    return {
        **body,
        "url": spec["url"],
        "urls": [spec["url"]],
        "engine": engine,
        "selectors": dict(spec.get("selectors") or {}),
        "config": config,
    }


def _cut(value: Any) -> tuple[Any, bool]:
    if isinstance(value, str):
        return (value[:MAX_CHARS], True) if len(value) > MAX_CHARS else (value, False)
    if isinstance(value, list):
        cut = len(value) > MAX_LIST
        shown = []
        for item in value[:MAX_LIST]:
            item, more = _cut(item)
            shown.append(item)
            cut = cut or more
        return shown, cut
    return value, False


def bound_items(
    items: list[dict[str, Any]], max_items: int, max_bytes: int = MAX_BYTES
) -> tuple[list[dict[str, Any]], bool]:
    """The first items of a page as a preview shows them: at most `max_items`, strings cut to
    MAX_CHARS, lists to MAX_LIST values, all within `max_bytes` of JSON; and whether anything
    was left out."""
    shown: list[dict[str, Any]] = []
    used, truncated = 0, len(items) > max_items
    for item in items[:max_items]:
        fields = {}
        for name, value in item.items():
            fields[name], cut = _cut(value)
            truncated = truncated or cut
        size = len(json.dumps(fields, default=str))
        if used + size > max_bytes:
            return shown, True
        used += size
        shown.append(fields)
    return shown, truncated


def push(client: redis.Redis, preview_id: str, state: str, **data: Any) -> None:
    """Worker side: one message on the preview's answer list."""
    key = answer_key(preview_id)
    pipe = client.pipeline(transaction=False)
    pipe.rpush(key, json.dumps({"state": state, **data}, default=str))
    pipe.expire(key, KEY_TTL)
    pipe.execute()


def claim(client: redis.Redis, preview_id: str) -> bool:
    """Worker side: whether the API still waits for this preview (and now it is ours)."""
    return bool(client.delete(open_key(preview_id)))


def reopen(client: redis.Redis, preview_id: str, wait_seconds: float) -> None:
    """Before handing a preview to another queue: the next worker must be able to claim it."""
    client.set(open_key(preview_id), "1", ex=max(1, int(wait_seconds + 0.999)))


def next_message(client: redis.Redis, preview_id: str, timeout: float) -> dict[str, Any] | None:
    """API side: the next message within `timeout` seconds, or None."""
    found = client.blpop([answer_key(preview_id)], timeout=max(0.01, timeout))
    if found is None:
        return None
    return json.loads(found[1])


def forget(client: redis.Redis, preview_id: str) -> None:
    """API side: the preview is answered (or given up); nothing more is read."""
    client.delete(answer_key(preview_id), open_key(preview_id))
