"""Rate limits that count what costs, in Redis across API processes (Flask-Limiter).

Every counted request falls in exactly one bucket, with a budget of its own:

- `reads` (GET, HEAD: lists, details, logs, results, files, event streams — the
  dashboard's calls), per user, a generous per-minute budget (`RATE_LIMIT_READS`);
- `writes` (POST, PUT, PATCH, DELETE that change records without starting work), per user
  (`RATE_LIMIT_WRITES`);
- `submissions` (what starts real work: `POST /jobs`, selector previews, retry, reset,
  retry-failed, a schedule's run-now, Scrapyd's `schedule.json`), per user
  (`RATE_LIMIT_SUBMISSIONS`);
- `anonymous` (any request without valid credentials: login, register, refresh), per client
  address (`RATE_LIMIT_ANONYMOUS`).

Each bucket is an application-wide limit of its own scope, exempt where the request belongs to
another bucket, so the `X-RateLimit-*` headers are those of the one bucket the request used;
`X-RateLimit-Bucket` names it (api/buckets.py decides). OPTIONS, health, the API docs and the
dashboard's pages and files are not counted (its API calls are)."""

from __future__ import annotations

import logging

from flask import Flask, g, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address

from api import scrapyd_auth, security
from api.buckets import BUCKETS, bucket_of
from api.dashboard import is_dashboard_request
from shared.settings import Settings

logger = logging.getLogger(__name__)


def _identity() -> str | None:
    """The caller's user id when the request carries valid credentials, else None."""
    try:
        if request.path.startswith("/scrapyd/"):  # basic auth there (api/scrapyd_auth.py)
            return str(scrapyd_auth.caller()["_id"])
        has_header = request.headers.get("Authorization") or request.headers.get("X-API-Key")
        if request.args.get("token") and not has_header:
            # event streams, downloads and the dashboard's <img> carry the token in the query
            # (security.authenticate_stream): count them against their user's reads, without
            # handing the query token to views that accept only headers
            user = security.authenticate_stream()
            g.pop("user", None)
            return str(user["_id"])
        return str(security.authenticate()["_id"])
    except Exception:  # bad or missing credentials: the view will answer 401 itself
        return None


def rate_key() -> str:
    if "rate_key" not in g:
        user = _identity()
        g.rate_key = f"user:{user}" if user else f"ip:{get_remote_address()}"
    return str(g.rate_key)


def bucket() -> str:
    """The bucket this request counts against (kept for the request)."""
    if "rate_bucket" not in g:
        g.rate_bucket = _classify()
    return str(g.rate_bucket)


def _classify() -> str:
    if not rate_key().startswith("user:"):
        return "anonymous"
    scrapyd_name = (request.view_args or {}).get("name") if request.blueprint == "scrapyd" else None
    return bucket_of(request.endpoint, request.method, scrapyd_name)


def budgets(settings: Settings) -> dict[str, str]:
    """Each bucket's limit (a `limits` string such as '600/minute')."""
    return {
        "reads": settings.rate_limit_reads,
        "writes": settings.rate_limit_writes,
        "submissions": settings.rate_limit_submissions,
        "anonymous": settings.rate_limit_anonymous,
    }


def _not_counted() -> bool:
    return (
        request.method == "OPTIONS"  # a CORS preflight or an Allow: no work, no credentials
        or request.path.endswith("/health")
        or request.path.startswith(("/api/docs", "/api/redoc", "/api/openapi.json"))
        or is_dashboard_request()
    )


def create_limiter(app: Flask, settings: Settings) -> Limiter:
    """A Limiter with one application-wide limit per bucket; a request meets only its own."""

    def limit_of(name: str) -> ApplicationLimit:
        return ApplicationLimit(
            budgets(settings)[name],
            scope=name,
            exempt_when=lambda: _not_counted() or bucket() != name,
            error_message=(
                f"Too many requests: the {name} bucket allows {budgets(settings)[name]} "
                "(X-RateLimit-* headers); try again after Retry-After seconds"
            ),
        )

    @app.after_request  # registered first, so it runs after the limiter has added its headers
    def bucket_headers(response):
        # Flask-Limiter adds Retry-After to every answer; it means "wait" only on a 429 or 503
        if response.status_code not in (429, 503):
            response.headers.pop("Retry-After", None)
        if "X-RateLimit-Limit" in response.headers and "rate_bucket" in g:
            response.headers["X-RateLimit-Bucket"] = g.rate_bucket
        return response

    limiter = Limiter(
        key_func=rate_key,
        app=app,
        application_limits=[limit_of(name) for name in BUCKETS],
        headers_enabled=True,
        storage_uri=settings.redis_url,
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1},
        strategy="fixed-window",
        key_prefix=f"ratelimit:{settings.mongo_db}",
        swallow_errors=True,  # Redis down: serve without limits rather than fail every request
        enabled=settings.rate_limit_enabled,
    )
    return limiter
