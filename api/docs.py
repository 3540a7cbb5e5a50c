"""The API's own docs assets: Swagger UI from the swagger-ui-bundle package, ReDoc vendored
in api/static; the docs pages load nothing from outside the service (a CSP makes sure)."""

from __future__ import annotations

from flask import Flask, Response, request, send_from_directory
from swagger_ui_bundle import swagger_ui_path

REDOC_VERSION = "2.5.2"
SWAGGER_ASSETS = "/api/docs/assets/"
REDOC_SCRIPT = f"/static/vendor/redoc-{REDOC_VERSION}/redoc.standalone.js"
DOCS_PATHS = ("/api/docs", "/api/redoc")

# Swagger UI's page and ReDoc's carry a small inline script and inline styles; everything
# else must come from this origin. ReDoc's sidebar shows a logo from its vendor's CDN: the
# policy keeps the browser from fetching it. ReDoc's search runs in a blob: worker.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)


def config() -> dict[str, object]:
    """flask-smorest settings that point the docs pages at the local assets."""
    return {
        "OPENAPI_SWAGGER_UI_URL": SWAGGER_ASSETS,
        "OPENAPI_REDOC_URL": REDOC_SCRIPT,
        # no "valid" badge from the public validator service
        "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None, "deepLinking": True},
    }


def register(app: Flask) -> None:
    """Serve Swagger UI's files and give the docs pages their content security policy."""
    allowed = {
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
        "favicon-16x16.png",
        "favicon-32x32.png",
    }

    def swagger_asset(filename: str) -> Response:
        if filename not in allowed:
            from werkzeug.exceptions import NotFound

            raise NotFound(f"No docs asset {filename}")
        return send_from_directory(str(swagger_ui_path), filename, max_age=86400)

    app.add_url_rule(
        SWAGGER_ASSETS + "<path:filename>", endpoint="swagger_asset", view_func=swagger_asset
    )

    @app.after_request
    def docs_policy(response: Response) -> Response:
        if request.path.rstrip("/") in DOCS_PATHS:
            response.headers["Content-Security-Policy"] = DOCS_CSP
        return response
