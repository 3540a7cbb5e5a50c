"""Health and monitoring endpoints."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas

blp = Blueprint("monitoring", __name__, url_prefix="/api/v1", description="Health and monitoring")


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, schemas.Health)
    def get(self):
        """Liveness of the API process; no authentication."""
        return {"status": "ok"}
