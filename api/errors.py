"""One JSON error shape for every failure: domain errors, HTTP errors, validation, JWT, crashes."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pymongo.errors
from flask import Flask, g, has_request_context, jsonify, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from api.openapi import ErrorOut
from shared.errors import DomainError

logger = logging.getLogger(__name__)

TYPES = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "validation_error",
    409: "conflict",
    413: "validation_error",
    415: "validation_error",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
    504: "unavailable",
}


def request_id() -> str:
    """This request's id: the client's X-Request-ID when sane, else a fresh one."""
    if not has_request_context():
        return ""
    rid = getattr(g, "request_id", None)
    if rid is None:
        sent = request.headers.get("X-Request-ID", "")
        rid = sent if 0 < len(sent) <= 128 and sent.isprintable() else uuid.uuid4().hex
        g.request_id = rid
    return rid


def error_response(
    status: int,
    detail: str,
    type_: str | None = None,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
):
    """The API's error body: {detail, type, errors?, request_id} with `status`; `extra`: more
    fields of that error (a quota's `quota`, `used`, `resets_at`)."""
    body: dict[str, Any] = {
        **(extra or {}),
        "detail": detail,
        "type": type_ or TYPES.get(status, "internal_error" if status >= 500 else "bad_request"),
        "request_id": request_id(),
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs/marshmallow's nested {location: {field: {sub: [msg]}}} as {"field.sub": [msg]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                flat[name] = list(value)
            else:
                flat.update(flatten_errors(value, name))
    elif isinstance(messages, list):
        flat[prefix or "_schema"] = [str(m) for m in messages]
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def field_errors(messages: Any) -> dict[str, list[str]]:
    """Validation messages as the API's `errors`: {"config.max_pages": [...]}, a map entry
    named by its map (not by `.key`/`.value`)."""
    return {
        name.removesuffix(".value").removesuffix(".key"): msgs
        for name, msgs in flatten_errors(messages).items()
    }


class ScrapeMasterApi(Api):
    """flask-smorest's Api with our error shape (answered here, documented by ErrorOut)."""

    ERROR_SCHEMA = ErrorOut

    def handle_http_exception(self, error: HTTPException):  # type: ignore[override]
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        headers = dict(data.get("headers") or {})
        valid_methods = getattr(error, "valid_methods", None)
        if status == 405 and valid_methods:
            headers["Allow"] = ", ".join(valid_methods)
        messages = data.get("errors") or data.get("messages")
        if messages:
            # webargs puts the location first ({"json": {...}}); users want field names.
            if isinstance(messages, dict) and set(messages) <= {
                "json",
                "query",
                "form",
                "files",
                "json_or_form",
            }:
                merged: dict[str, Any] = {}
                for part in messages.values():
                    merged.update(part if isinstance(part, dict) else {"_schema": part})
                messages = merged
            errors = field_errors(messages)
            if errors == {"_schema": ["Invalid JSON body."]}:
                return error_response(
                    status,
                    "Request body is not valid JSON",
                    errors={"body": ["Invalid JSON body."]},
                    headers=headers,
                )
            names = ", ".join(sorted(errors))
            return error_response(status, f"Invalid input: {names}", errors=errors, headers=headers)
        if status >= 500:
            detail = "Internal server error"
        elif status == 405:
            detail = f"Method {request.method} not allowed here" + (
                f"; allowed: {', '.join(valid_methods)}" if valid_methods else ""
            )
        else:
            detail = data.get("message") or error.description or error.name
        return error_response(status, detail, headers=headers)


def register_error_handlers(app: Flask) -> None:
    """Domain errors and uncaught exceptions; HTTP errors are handled by ScrapeMasterApi."""

    @app.errorhandler(DomainError)
    def on_domain_error(exc: DomainError):
        return error_response(
            exc.status, exc.detail, exc.type, exc.errors, headers=exc.headers, extra=exc.extra
        )

    @app.errorhandler(pymongo.errors.ConnectionFailure)
    def on_store_down(exc: Exception):
        # server selection timeouts, lost connections, stalled sockets: the store, not the user
        logger.warning("MongoDB unavailable (request %s): %s", request_id(), exc)
        return error_response(
            503,
            "The job store (MongoDB) is unavailable; try again shortly",
            "unavailable",
            headers={"Retry-After": "5"},
        )

    @app.errorhandler(Exception)
    def on_crash(exc: Exception):
        if isinstance(exc, HTTPException):
            return app.extensions["scrapemaster_api"].handle_http_exception(exc)
        logger.exception("unhandled error (request %s)", request_id())
        return error_response(500, "Internal server error", "internal_error")
