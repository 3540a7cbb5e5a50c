"""The application factory: settings in, a configured Flask app out."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from flask import Flask, g, request
from pymongo import WriteConcern
from werkzeug.middleware.proxy_fix import ProxyFix

from api import dashboard, docs, errors, json_guard, openapi, websocket
from api.blueprints import (
    auth,
    events,
    files,
    jobs,
    monitoring,
    preview,
    proxies,
    results,
    schedules,
    scrapyd,
    users,
    webhooks,
)
from api.extensions import jwt, make_celery_client
from api.limits import create_limiter
from api.services.auth import ensure_admin
from shared import db as dbmod
from shared.events import EventLog
from shared.settings import Settings, get_settings, set_settings

logger = logging.getLogger("api")


class _RequestIdFilter(logging.Filter):
    """Stamps every log record with the request id, so one request's lines can be found."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = errors.request_id() or "-"
        return True


def _configure_logging(settings: Settings) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_scrapemaster", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler._scrapemaster = True  # type: ignore[attr-defined]
        handler.addFilter(_RequestIdFilter())
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
        root.addHandler(handler)
    root.setLevel(settings.log_level)


def _register_jwt_errors() -> None:
    def reject(detail: str):
        return errors.error_response(401, detail, "unauthorized")

    jwt.unauthorized_loader(lambda reason: reject(f"Not authenticated: {reason}"))
    jwt.invalid_token_loader(lambda reason: reject(f"Invalid token: {reason}"))
    jwt.expired_token_loader(lambda header, payload: reject("Token has expired"))
    jwt.revoked_token_loader(lambda header, payload: reject("Token has been revoked"))
    jwt.needs_fresh_token_loader(lambda header, payload: reject("Fresh token required"))
    jwt.user_lookup_error_loader(lambda header, payload: reject("User no longer exists"))


def create_app(settings: Settings | None = None) -> Flask:
    """Build the API for `settings` (default: from the environment)."""
    settings = settings or get_settings()
    set_settings(settings)
    _configure_logging(settings)
    # root_path: api/ (templates/ and static/ of the dashboard), whatever else is importable
    # under the name "scrapemaster"
    app = Flask("scrapemaster", root_path=str(Path(__file__).resolve().parent))
    # answers keep the order fields were written in (a job's selectors, an item's fields):
    # Flask 2.3+ ignores JSON_SORT_KEYS and sorts unless told here
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.trusted_proxies:
        # Only behind a reverse proxy that sets X-Forwarded-For: otherwise a client could forge
        # the header and pick its own address (and a fresh per-IP rate-limit budget).
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    # paths as API.md has them (/api/v1/jobs); with strict_slashes off, /api/v1/jobs/ still
    # matches the same rule, and the OpenAPI document lists only the first
    app.url_map.strict_slashes = False
    settings.secrets_keys()  # fail fast: job secrets are sealed with SECRETS_KEY
    app.config.update(
        SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        JSON_SORT_KEYS=False,
        JWT_SECRET_KEY=settings.api_jwt_secret(),
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ERROR_MESSAGE_KEY="detail",
        API_TITLE="ScrapeMaster API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_REDOC_PATH="/redoc",
        **docs.config(),  # Swagger UI and ReDoc from local files: the docs work offline
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                }
            },
            "security": [{"bearerAuth": []}, {"apiKey": []}],
        },
    )
    # what the API acknowledges to a user (a job stored, cancelled, deleted …) is on disk when
    # it answers: journaled writes, so a store that crashes right after keeps it. Workers
    # write without waiting: a lost claim or progress write is redone by the recovery paths.
    database = dbmod.database(settings).with_options(write_concern=WriteConcern(j=True))
    app.extensions["scrapemaster_db"] = database
    app.extensions["scrapemaster_celery"] = make_celery_client(settings)
    app.extensions["scrapemaster_events"] = EventLog.from_settings(settings)
    jwt.init_app(app)
    _register_jwt_errors()
    api = errors.ScrapeMasterApi(
        app, spec_kwargs={"extra_plugins": [openapi.ErrorResponsesPlugin(app)]}
    )
    app.extensions["scrapemaster_api"] = api
    for blueprint in (
        auth.blp,
        preview.blp,  # before jobs: /jobs/preview is not a job id
        jobs.blp,
        events.blp,
        results.blp,
        files.blp,
        monitoring.blp,
        proxies.blp,
        webhooks.blp,
        schedules.blp,
        users.blp,
    ):
        api.register_blueprint(blueprint)
    # plain Flask, outside the OpenAPI document: Scrapyd's shapes (api/blueprints/scrapyd.py)
    app.register_blueprint(scrapyd.blp)
    errors.register_error_handlers(app)
    docs.register(app)
    dashboard.register(app)
    websocket.register(app)
    app.extensions["scrapemaster_limiter"] = create_limiter(app, settings)

    @app.before_request
    def start_request():
        g.started = time.perf_counter()
        errors.request_id()
        try:
            json_guard.check_request(request)
        except json_guard.BadJson as exc:
            return errors.error_response(
                400, f"Request body refused: {exc}", "validation_error", {"body": [str(exc)]}
            )
        return None

    @app.after_request
    def finish_request(response):
        response.headers["X-Request-ID"] = errors.request_id()
        return response

    try:
        dbmod.ensure_indexes(database)
        if settings.admin_username and settings.admin_password:
            ensure_admin(
                database, settings.admin_username, settings.admin_password, settings.admin_email
            )
    except Exception:  # the API still starts; /monitoring/system reports MongoDB down
        logger.exception("MongoDB not reachable at start-up; indexes and admin not ensured")
    return app
