"""Files of a job: its screenshots and PDFs, listed and downloaded."""

from __future__ import annotations

from flask import Response, stream_with_context
from flask.views import MethodView

from api.json_guard import Blueprint
from api.schemas_files import FILE_DOC, DownloadArgs, FileArgs, FilesPage
from api.security import auth_required, current_user, stream_auth_required
from api.services import files

blp = Blueprint("files", __name__, url_prefix="/api/v1/jobs", description="Screenshots and PDFs")


@blp.route("/<job_id>/files")
class Files(MethodView):
    decorators = [auth_required]

    @blp.arguments(FileArgs, location="query")
    @blp.response(200, FilesPage)
    def get(self, args, job_id):
        """The job's screenshots and PDFs, oldest first (its owner only)."""
        return files.page(job_id, current_user(), args["skip"], args["limit"])


@blp.route("/<job_id>/files/<file_id>")
class File(MethodView):
    decorators = [stream_auth_required]  # an <img> or a link can show it: ?token=

    @blp.arguments(DownloadArgs, location="query")
    @blp.response(200, content_type="application/octet-stream")
    @blp.doc(**FILE_DOC)
    def get(self, args, job_id, file_id):
        """One file's bytes: a PNG or a PDF (its owner only)."""
        stream, found, name = files.open_file(job_id, file_id, current_user())
        disposition = "attachment" if args["download"] else "inline"
        return Response(
            stream_with_context(iter(stream)),
            content_type=found["content_type"],
            headers={
                "Content-Length": str(found["size"]),
                "Content-Disposition": f'{disposition}; filename="{name}"',
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
