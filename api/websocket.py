"""The WebSocket at /api/v1/ws: the caller's job events as JSON text frames (flask-sock).

Authenticated before the upgrade (Bearer header or `?token=`, an access token or an API key),
so a bad token is a plain 401 in the error shape. WebSockets and SSE streams share one cap,
`STREAMS_MAX_PER_USER` per user (api/stream_slots.py): one more is refused before the upgrade
with 429 in the error shape. A connection whose user is deactivated or changes role is closed
with code 1008 (re-checked every few seconds).
"""

from __future__ import annotations

import json
from typing import Any

import redis
from flask import Flask, g, request
from flask_sock import Sock

from api import errors, stream_slots
from api.security import STREAM_RECHECK_SECONDS, StreamUser, authenticate_stream
from api.services import event_log, settings
from shared import events
from shared.errors import DomainError

PATH = "/api/v1/ws"
POLICY_VIOLATION = 1008


def register(app: Flask) -> None:
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": 25})
    sock = Sock(app)

    @app.before_request
    def authenticate_upgrade() -> Any:
        if request.path.rstrip("/") != PATH:
            return None
        try:
            g.ws_user = authenticate_stream()
            g.stream_slot = stream_slots.take(g.ws_user["_id"])
        except DomainError as exc:
            return errors.error_response(exc.status, exc.detail, exc.type, headers=exc.headers)
        return None

    @app.teardown_request
    def release_slot(_exc: BaseException | None) -> None:
        slot = g.pop("stream_slot", None)  # after the socket closed, or the upgrade failed
        if slot is not None:
            slot.release()

    @sock.route(PATH)
    def job_events(ws: Any) -> None:
        user, slot = g.ws_user, g.stream_slot
        try:
            stream = events.user_stream(user["_id"])
            after = event_log().last_id(stream)
            # short reads: the user is re-checked between them (deactivated or demoted: closed)
            wait = min(settings().sse_heartbeat_seconds, STREAM_RECHECK_SECONDS)
            checked = StreamUser(user)
            while ws.connected:
                slot.keep()
                if not checked.still_allowed():
                    ws.close(reason=POLICY_VIOLATION, message="account deactivated or changed")
                    return
                for event in event_log().read(stream, after, block_ms=int(wait * 1000)):
                    after = event["id"]
                    ws.send(json.dumps(event, default=str))
        except redis.RedisError:
            ws.close(reason=1011, message="events unavailable")
