"""Domain errors raised by services and mapped to HTTP status codes in one place (api/errors.py)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of the errors a user can cause; `type` is the API's error type."""

    status = 400
    type = "bad_request"

    def __init__(
        self,
        detail: str,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra: dict[str, Any] = {}  # more fields of the error body (QuotaExceeded)


class ValidationFailed(DomainError):
    status = 422
    type = "validation_error"


class Unauthorized(DomainError):
    status = 401
    type = "unauthorized"


class Forbidden(DomainError):
    status = 403
    type = "forbidden"


class NotFound(DomainError):
    status = 404
    type = "not_found"


class Conflict(DomainError):
    status = 409
    type = "conflict"


class RateLimited(DomainError):
    status = 429
    type = "rate_limited"


class QuotaExceeded(DomainError):
    """Over a quota (API.md § Usage, quotas and politeness): the body also names the `quota`,
    what is `used` and when it `resets_at` (null: a storage quota, which never resets)."""

    status = 429
    type = "quota_exceeded"

    def __init__(self, detail: str, quota: str, limit: int, used: float, resets_at: str | None):
        super().__init__(detail)
        self.extra = {"quota": quota, "limit": limit, "used": used, "resets_at": resets_at}


class Unavailable(DomainError):
    status = 503
    type = "unavailable"
