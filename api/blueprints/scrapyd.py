"""Scrapyd's JSON API under /scrapyd/, so scrapyd-deploy and Scrapyd scripts work unchanged.

Plain Flask routes, not flask-smorest: the shapes are Scrapyd's, not ours, and these paths stay
out of the OpenAPI document (docs/guide/scrapyd.md describes them). Every answer is Scrapyd's
`{"status": "ok", "node_name": …, …}`; every error, on these paths only, is Scrapyd's
`{"status": "error", "message": …, "node_name": …}`, with a 4xx status where Scrapyd answers
200 (see the guide). GET or POST per endpoint as in Scrapyd 1.x; parameters from the query
string and the form body alike, the first value of each (Twisted's `request.args`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import pymongo.errors
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from api import errors, scrapyd_auth
from api.services import scrapyd
from api.services.scrapyd import ScrapydError, required
from shared.errors import DomainError

logger = logging.getLogger(__name__)
blp = Blueprint("scrapyd", __name__, url_prefix="/scrapyd")
NODE_NAME = socket.gethostname()


def _answer(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None):
    response = jsonify({**body, "node_name": NODE_NAME})
    response.status_code = status
    response.headers["Access-Control-Allow-Origin"] = "*"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return _answer({"status": "error", "message": message}, status, headers)


def _params() -> dict[str, str]:
    """The first value of each parameter, the query string's before the form's."""
    found: dict[str, str] = {}
    for source in (request.args, request.form):
        for key in source:
            found.setdefault(key, source.getlist(key)[0])
    return found


def _all(name: str) -> list[str]:
    return request.args.getlist(name) + request.form.getlist(name)


ENDPOINTS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {}


def endpoint(name: str, method: str):
    """Register `/scrapyd/<name>.json` for `method`; the view returns Scrapyd's fields."""

    def decorator(fn: Callable[[], dict[str, Any]]):
        ENDPOINTS[name] = (method, fn)
        return fn

    return decorator


@endpoint("daemonstatus", "GET")
def daemon_status() -> dict[str, Any]:
    return scrapyd.daemon_status(scrapyd_auth.caller())


@endpoint("addversion", "POST")
def add_version() -> dict[str, Any]:
    user = scrapyd_auth.caller()
    scrapyd.may_deploy(user)  # before reading an upload that will be refused anyway
    params = _params()
    project, version = required(params, "project"), required(params, "version")
    upload = request.files.get("egg")
    if upload is not None:
        egg = upload.read()
    elif "egg" in params:  # curl -F egg=path (not @path) sends the text: Scrapyd says so
        egg = params["egg"].encode()
    else:
        raise ScrapydError("'egg' parameter is required")
    return scrapyd.add_version(user, project, version, egg)


@endpoint("schedule", "POST")
def schedule() -> dict[str, Any]:
    return scrapyd.schedule(scrapyd_auth.caller(), _params(), _all("setting"))


@endpoint("cancel", "POST")
def cancel() -> dict[str, Any]:
    params = _params()
    user = scrapyd_auth.caller()
    return scrapyd.cancel(user, required(params, "project"), required(params, "job"))


@endpoint("status", "GET")
def status() -> dict[str, Any]:
    params = _params()
    user = scrapyd_auth.caller()
    return scrapyd.status(user, required(params, "job"), params.get("project") or None)


@endpoint("listprojects", "GET")
def list_projects() -> dict[str, Any]:
    return scrapyd.list_projects(scrapyd_auth.caller())


@endpoint("listversions", "GET")
def list_versions() -> dict[str, Any]:
    user = scrapyd_auth.caller()
    return scrapyd.list_versions(user, required(_params(), "project"))


@endpoint("listspiders", "GET")
def list_spiders() -> dict[str, Any]:
    params = _params()
    user = scrapyd_auth.caller()
    project = required(params, "project")
    return {"spiders": scrapyd.spiders(user, project, params.get("_version") or None)}


@endpoint("listjobs", "GET")
def list_jobs() -> dict[str, Any]:
    return scrapyd.list_jobs(scrapyd_auth.caller(), _params().get("project") or None)


@endpoint("delversion", "POST")
def delete_version() -> dict[str, Any]:
    params = _params()
    user = scrapyd_auth.caller()
    scrapyd.may_deploy(user)
    return scrapyd.delete_version(user, required(params, "project"), required(params, "version"))


@endpoint("delproject", "POST")
def delete_project() -> dict[str, Any]:
    user = scrapyd_auth.caller()
    scrapyd.may_deploy(user)
    return scrapyd.delete_project(user, required(_params(), "project"))


@blp.before_request
def egg_sized_uploads() -> None:
    """addversion.json takes an egg up to SPIDER_MAX_EGG_MB (other bodies: MAX_REQUEST_BYTES)."""
    if request.path.endswith("/addversion.json"):
        settings = current_app.config["SETTINGS"]
        request.max_content_length = settings.spider_max_egg_mb * 1024 * 1024 + 65536


@blp.route("/<name>.json", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def dispatch(name: str):
    """One route for every endpoint: an unknown name or a wrong method answers in Scrapyd's
    shape too (Flask's own 404 and 405 come before a blueprint could shape them)."""
    found = ENDPOINTS.get(name)
    if found is None:
        return _error(f"no such endpoint: /scrapyd/{name}.json", 404)
    method, view = found
    if request.method != method:
        # authentication first: who may not call anything learns nothing about the method
        scrapyd_auth.caller()
        return _error(
            f"{request.method} is not supported by {name}.json; use {method}",
            405,
            {"Allow": f"OPTIONS, HEAD, {method}"},
        )
    return _answer({"status": "ok", **view()})


@blp.route("/", defaults={"rest": ""}, methods=["GET", "POST"])
@blp.route("/<path:rest>", methods=["GET", "POST"])
def unknown(rest: str):
    return _error(f"no such endpoint: /scrapyd/{rest}", 404)


@blp.errorhandler(DomainError)
def on_domain_error(exc: DomainError):
    message = exc.detail
    if exc.errors:  # a validation error: say which fields and why, in the one message
        named = errors.field_errors(exc.errors)
        message += "; " + "; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(named.items()))
    return _error(message, exc.status, exc.headers)


@blp.errorhandler(pymongo.errors.ConnectionFailure)
def on_store_down(exc: Exception):
    logger.warning("MongoDB unavailable (request %s): %s", errors.request_id(), exc)
    return _error("The job store (MongoDB) is unavailable; try again shortly", 503)


@blp.errorhandler(Exception)
def on_crash(exc: Exception):
    if isinstance(exc, HTTPException):
        return on_http_error(exc)
    logger.exception("unhandled error (request %s)", errors.request_id())
    return _error("Internal server error", 500)


@blp.errorhandler(HTTPException)
def on_http_error(exc: HTTPException):
    if isinstance(exc, RequestEntityTooLarge):
        limit = request.max_content_length
        return _error(f"the request is larger than {limit} bytes", 413)
    status = exc.code or 500
    if status >= 500:
        return _error("Internal server error", status)
    data = getattr(exc, "data", None) or {}
    return _error(str(data.get("message") or exc.description or exc.name), status)
