"""Results: pages of a job's items and streamed exports."""

from __future__ import annotations

from flask import Response, stream_with_context
from flask.views import MethodView

from api import schemas
from api.json_guard import Blueprint
from api.schemas_ops import EXPORT_DOC
from api.security import auth_required, current_user, stream_auth_required
from api.services import results

blp = Blueprint("results", __name__, url_prefix="/api/v1/results", description="Scraped items")


@blp.route("/<job_id>")
class Results(MethodView):
    decorators = [auth_required]

    @blp.arguments(schemas.ResultArgs, location="query")
    @blp.response(200, schemas.ResultsPage)
    def get(self, args, job_id):
        """A page of the job's items, in the order they were scraped."""
        return results.page(job_id, current_user(), args["skip"], args["limit"])


@blp.route("/<job_id>/export")
class Export(MethodView):
    decorators = [stream_auth_required]  # a link can download: ?token=

    @blp.arguments(schemas.ExportArgs, location="query")
    @blp.response(200, content_type="application/octet-stream")
    @blp.doc(**EXPORT_DOC)
    def get(self, args, job_id):
        """Download every item as JSON, CSV or JSONL, streamed."""
        fmt = args["format"]
        raw = args["csv_formulas"] == "raw"
        chunks, content_type = results.export(job_id, current_user(), fmt, raw_formulas=raw)
        return Response(
            stream_with_context(chunks),
            content_type=content_type,
            headers={
                "Content-Disposition": f'attachment; filename="{job_id}.{fmt}"',
                "Cache-Control": "no-store",
            },
        )
