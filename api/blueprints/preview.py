"""Selector preview: what a job's selectors extract from its first page, before submitting."""

from __future__ import annotations

from flask.views import MethodView

from api import schemas, schemas_preview
from api.json_guard import Blueprint
from api.security import auth_required
from api.services import preview

blp = Blueprint(
    "preview", __name__, url_prefix="/api/v1/jobs", description="Selector preview (one page)"
)


@blp.route("/preview")
class Preview(MethodView):
    decorators = [auth_required]

    @blp.arguments(schemas.JobCreate)
    @blp.response(200, schemas_preview.PreviewOut)
    @blp.alt_response(504, response="GATEWAY_TIMEOUT")
    def post(self, spec):
        """Run a job body's selectors on its first page in a worker; nothing is stored."""
        return preview.run(spec)
