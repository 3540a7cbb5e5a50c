"""Schemas of the selector preview (POST /jobs/preview): the answer; the body is a job's."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from api.schemas import JobError


class PreviewLog(ma.Schema):
    level = fields.String()
    message = fields.String()


class PreviewOut(ma.Schema):
    url = fields.String(metadata={"description": "the page asked for (the job's first URL)"})
    final_url = fields.String(
        allow_none=True, metadata={"description": "after redirects; null when nothing came back"}
    )
    status_code = fields.Integer(allow_none=True, metadata={"description": "HTTP status"})
    title = fields.String(allow_none=True, metadata={"description": "the page's <title>"})
    engine = fields.String(metadata={"description": "the engine that fetched it"})
    auto_reason = fields.String(
        allow_none=True, metadata={"description": "engine auto: why it chose this engine"}
    )
    count = fields.Integer(metadata={"description": "items the selectors extract from the page"})
    items = fields.List(
        fields.Dict(),
        metadata={"description": "the first PREVIEW_MAX_ITEMS items, long values cut"},
    )
    truncated = fields.Boolean(metadata={"description": "whether items shows less than count"})
    error = fields.Nested(
        JobError, allow_none=True, metadata={"description": "why the page gave nothing"}
    )
    logs = fields.List(fields.Nested(PreviewLog), metadata={"description": "the crawl's notes"})
    duration_ms = fields.Integer()
