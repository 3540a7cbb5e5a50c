"""Per-user rate limits (per address when anonymous), counted in Redis across API processes."""

from __future__ import annotations

import logging

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from api import scrapyd_auth, security
from api.dashboard import is_dashboard_request
from shared.settings import Settings

logger = logging.getLogger(__name__)


def _identity() -> str | None:
    """The caller's user id when the request carries valid credentials, else None."""
    try:
        if request.path.startswith("/scrapyd/"):  # basic auth there (api/scrapyd_auth.py)
            return str(scrapyd_auth.caller()["_id"])
        return str(security.authenticate()["_id"])
    except Exception:  # bad or missing credentials: the view will answer 401 itself
        return None


def rate_key() -> str:
    user = _identity()
    return f"user:{user}" if user else f"ip:{get_remote_address()}"


def create_limiter(app: Flask, settings: Settings) -> Limiter:
    """A Limiter whose one budget covers every endpoint (health, docs and the dashboard's
    pages and files are exempt: its API calls count)."""

    def current_limit() -> str:
        if rate_key().startswith("user:"):
            return settings.rate_limit_authenticated
        return settings.rate_limit_anonymous

    def exempt() -> bool:
        return (
            request.path.endswith("/health")
            or request.path.startswith(("/api/docs", "/api/redoc", "/api/openapi.json"))
            or is_dashboard_request()
        )

    @app.after_request  # registered first, so it runs after the limiter has added its headers
    def retry_after_only_when_refused(response):
        # Flask-Limiter adds Retry-After to every answer; it means "wait" only on a 429 or 503
        if response.status_code not in (429, 503):
            response.headers.pop("Retry-After", None)
        return response

    limiter = Limiter(
        key_func=rate_key,
        app=app,
        application_limits=[current_limit],
        application_limits_exempt_when=exempt,
        headers_enabled=True,
        storage_uri=settings.redis_url,
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1},
        strategy="fixed-window",
        key_prefix=f"ratelimit:{settings.mongo_db}",
        swallow_errors=True,  # Redis down: serve without limits rather than fail every request
        enabled=settings.rate_limit_enabled,
    )
    return limiter
