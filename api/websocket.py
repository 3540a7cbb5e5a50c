"""The WebSocket at /api/v1/ws: the caller's job events as JSON text frames (flask-sock).

Authenticated before the upgrade (Bearer header or `?token=`, an access token or an API key),
so a bad token is a plain 401 in the error shape. At most `WS_MAX_PER_USER` connections per
user (counted in Redis across API processes); one more is closed with code 1008, and so is
a connection whose user is deactivated or changes role (re-checked every few seconds).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from flask import Flask, g, request
from flask_sock import Sock

from api import errors
from api.security import STREAM_RECHECK_SECONDS, StreamUser, authenticate_stream
from api.services import event_log, settings
from shared import events
from shared.errors import DomainError

logger = logging.getLogger(__name__)
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
        except DomainError as exc:
            return errors.error_response(exc.status, exc.detail, exc.type)
        return None

    @sock.route(PATH)
    def job_events(ws: Any) -> None:
        user = g.ws_user
        counter = f"scrapemaster:ws:{user['_id']}"
        client = event_log().client
        try:
            count = int(client.incr(counter))
            client.expire(counter, 3600)
        except redis.RedisError:
            ws.close(reason=1011, message="events unavailable")
            return
        try:
            if count > settings().ws_max_per_user:
                ws.close(reason=POLICY_VIOLATION, message="too many connections")
                return
            stream = events.user_stream(user["_id"])
            after = event_log().last_id(stream)
            # short reads: the user is re-checked between them (deactivated or demoted: closed)
            wait = min(settings().sse_heartbeat_seconds, STREAM_RECHECK_SECONDS)
            checked = StreamUser(user)
            while ws.connected:
                if not checked.still_allowed():
                    ws.close(reason=POLICY_VIOLATION, message="account deactivated or changed")
                    return
                for event in event_log().read(stream, after, block_ms=int(wait * 1000)):
                    after = event["id"]
                    ws.send(json.dumps(event, default=str))
        finally:
            try:
                client.decr(counter)
            except redis.RedisError:
                logger.warning("websocket count of %s not decreased", user["_id"])
