"""The OpenAPI document true to the API: the error shape it really answers, and on every
operation the error statuses that can happen there, derived from how the view is guarded."""

from __future__ import annotations

import http
from typing import Any

import marshmallow as ma
from apispec import BasePlugin
from marshmallow import fields, validate

from api.buckets import bucket_of

ERROR_TYPES = (
    "validation_error",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "rate_limited",
    "unavailable",
    "internal_error",
)
PUBLIC_PATHS = (
    "/api/v1/auth/register",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/health",
    "/api/v1/health/ready",
)
NOT_RATE_LIMITED = ("/api/v1/health",)
NO_STORE = ("/api/v1/health",)  # answers without MongoDB, so never 503 for it


class ErrorOut(ma.Schema):
    """Every error the API answers, whatever the status (api/errors.py)."""

    detail = fields.String(required=True, metadata={"description": "what went wrong, for people"})
    type = fields.String(
        required=True,
        validate=validate.OneOf(ERROR_TYPES),
        metadata={"description": "what went wrong, for programs"},
    )
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "validation errors only: field name → messages"},
    )
    request_id = fields.String(
        required=True, metadata={"description": "also in X-Request-ID and the server's logs"}
    )


def _guards(rule: Any, app: Any) -> set[str]:
    """Names of the class-level decorators of the view behind `rule` (auth_required, …)."""
    view = app.view_functions.get(rule.endpoint) if app is not None else None
    view_class = getattr(view, "view_class", None)
    return {getattr(d, "__name__", "") for d in getattr(view_class, "decorators", ())}


class ErrorResponsesPlugin(BasePlugin):
    """Adds, per operation: 401 unless public, 403 for admin-only views, 404 with a path id,
    400/413/422 with a body or query, 429 and `x-rate-limit-bucket` when rate-limited, 503
    when it needs MongoDB; public operations get `security: []`. 409 is declared by the views
    that raise it."""

    def __init__(self, app: Any = None) -> None:
        self.app = app
        self.spec: Any = None

    def init_spec(self, spec: Any) -> None:
        self.spec = spec

    def operation_helper(self, path: str | None = None, operations: Any = None, **kwargs: Any):
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        guards = _guards(rule, self.app)
        public = rule.rule.rstrip("/") in PUBLIC_PATHS
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            wanted: list[int] = []
            if public:
                operation["security"] = []
            else:
                wanted.append(401)
            if "admin_required" in guards:
                wanted.append(403)
            if "<" in rule.rule:
                wanted.append(404)
            has_body = "requestBody" in operation
            if has_body or operation.get("parameters"):
                wanted.append(422)
            if has_body:
                wanted += [400, 413]
            if rule.rule not in NOT_RATE_LIMITED:
                wanted.append(429)
                # the rate-limit bucket it counts against (api/limits.py; X-RateLimit-Bucket)
                operation["x-rate-limit-bucket"] = (
                    "anonymous" if public else bucket_of(rule.endpoint, method)
                )
            if rule.rule not in NO_STORE:
                wanted.append(503)
            for status in wanted:
                key = str(status)
                if key not in responses and status not in responses:
                    responses[key] = self._ref(status)

    def _ref(self, status: int) -> dict[str, str]:
        return self.spec.components.get_ref("response", http.HTTPStatus(status).name)
