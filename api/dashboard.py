"""The web dashboard at `/`: server-side page shells (Jinja) whose bit of JavaScript talks to
the JSON API with the user's token; no build step, nothing loaded from outside the service."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, render_template, request

blp = Blueprint("dashboard", __name__)

# No inline script or style on these pages, so the policy can be strict: an injected tag
# could neither run nor reach anything but this service.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
PAGES = {
    "jobs": "Jobs",
    "job": "Job",
    "submit": "New job",
    "schedules": "Schedules",
    "webhooks": "Webhooks",
    "usage": "Usage",
    "login": "Log in",
}


def _page(name: str, **context: str) -> str:
    return render_template(f"dashboard/{name}.html", page=name, title=PAGES[name], **context)


@blp.get("/")
def jobs() -> str:
    return _page("jobs")


@blp.get("/login")
def login() -> str:
    return _page("login")


@blp.get("/jobs/new")
def submit() -> str:
    return _page("submit")


@blp.get("/jobs/<job_id>")
def job(job_id: str) -> str:
    return _page("job", job_id=job_id)


@blp.get("/schedules")
def schedules() -> str:
    return _page("schedules")


@blp.get("/webhooks")
def webhooks() -> str:
    return _page("webhooks")


@blp.get("/usage")
def usage() -> str:
    return _page("usage")


def register(app: Flask) -> None:
    """Mount the dashboard; its pages carry a strict content security policy."""
    app.register_blueprint(blp)

    @app.after_request
    def dashboard_policy(response: Response) -> Response:
        if request.blueprint == "dashboard" or request.path.startswith("/static/"):
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


def is_dashboard_request() -> bool:
    """Pages and static files: not counted against the API's rate limit."""
    return request.blueprint == "dashboard" or request.path.startswith("/static/")
