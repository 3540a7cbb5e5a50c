"""Exceptions of the client: the API's error answers, and a server that cannot be reached."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx


class ScrapeMasterError(Exception):
    """Anything the client raises on purpose."""


class ConnectionFailed(ScrapeMasterError):
    """The API could not be reached, or a connection broke and could not be resumed."""


class ApiError(ScrapeMasterError):
    """An error answer of the API, in its shape `{detail, type, errors, request_id}`."""

    def __init__(
        self,
        status: int,
        detail: str,
        type: str | None = None,
        errors: dict[str, Any] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type
        self.errors = errors or {}
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.detail

    def describe(self) -> str:
        """One line: the detail, each field's messages, the status, type and request id."""
        text = self.detail
        if self.errors:
            text += " (" + "; ".join(f"{k}: {v}" for k, v in _flat(self.errors)) + ")"
        meta = " ".join(str(p) for p in (self.status, self.type) if p)
        if self.request_id:
            meta += f", request {self.request_id}"
        if self.retry_after is not None:
            meta += f", retry after {self.retry_after:g} s"
        return f"{text} [{meta}]"


class BadRequest(ApiError):
    """400: the request could not be read."""


class Unauthorized(ApiError):
    """401: no credentials, or they are wrong, expired or revoked."""


class Forbidden(ApiError):
    """403: authenticated, but not allowed."""


class NotFound(ApiError):
    """404: no such resource (another user's resources answer 404 as well)."""


class Conflict(ApiError):
    """409: the resource is not in a state that allows this (e.g. cancelling a finished job)."""


class PayloadTooLarge(ApiError):
    """413: the request body is over the server's MAX_REQUEST_BYTES."""


class ValidationFailed(ApiError):
    """422: invalid input; `errors` maps each field to its messages."""


class RateLimited(ApiError):
    """429: too many requests (or failed logins); `retry_after` says when to try again."""


class ServerError(ApiError):
    """5xx: the server failed, or a dependency of it is down (503)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: RateLimited,
}


def _flat(errors: Any, prefix: str = "") -> list[tuple[str, str]]:
    """{"config": {"max_pages": ["…"]}} as [("config.max_pages", "…")]."""
    if isinstance(errors, dict):
        out: list[tuple[str, str]] = []
        for key, value in errors.items():
            out += _flat(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(errors, list | tuple):
        if all(isinstance(m, str) for m in errors):
            return [(prefix, " ".join(errors))]
        return [pair for m in errors for pair in _flat(m, prefix)]
    return [(prefix, str(errors))]


def _retry_after(response: httpx.Response) -> float | None:
    if response.status_code not in (429, 503):
        return None
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def error_from(response: httpx.Response) -> ApiError:
    """The ApiError for a non-2xx answer (read it first when it was streamed)."""
    body: Any = None
    with contextlib.suppress(ValueError):
        body = response.json()
    status = response.status_code
    if isinstance(body, dict) and "detail" in body:
        detail = str(body["detail"])
        type_, errors, request_id = body.get("type"), body.get("errors"), body.get("request_id")
    else:  # not the API talking: a proxy, a wrong URL, a server from before the error shape
        snippet = " ".join(response.text.split())[:120]
        detail = f"HTTP {status} {response.reason_phrase}" + (f": {snippet}" if snippet else "")
        type_, errors, request_id = None, None, None
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(
        status,
        detail,
        type_,
        errors if isinstance(errors, dict) else None,
        request_id or response.headers.get("X-Request-ID"),
        _retry_after(response),
    )
