"""Marshmallow schemas of a job's files: screenshots and PDFs (API.md § Files)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas import MAX_SKIP, UTCDateTime


class FileArgs(ma.Schema):
    skip = fields.Integer(load_default=0, validate=validate.Range(0, MAX_SKIP))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 1000))


class FileOut(ma.Schema):
    id = fields.String()
    job_id = fields.String()
    url = fields.String(metadata={"description": "the page it shows"})
    kind = fields.String(metadata={"description": "screenshot or pdf"})
    content_type = fields.String(metadata={"example": "image/png"})
    size = fields.Integer(metadata={"description": "bytes"})
    created_at = UTCDateTime()


class FilesPage(ma.Schema):
    total = fields.Integer()
    files = fields.List(fields.Nested(FileOut))


class DownloadArgs(ma.Schema):
    download = fields.Boolean(
        load_default=False,
        metadata={"description": "true: Content-Disposition attachment (default inline)"},
    )
    token = fields.String(
        load_only=True,
        metadata={"description": "an access token or API key, for a download started by a link"},
    )


FILE_DOC = {
    "responses": {
        "200": {
            "description": "The file's bytes, with Content-Disposition naming it "
            "(`<host>-<n>.png`, `<host>-<n>.pdf`)",
            "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }
}
