"""Schemas of the operational answers (monitoring, metrics, exports), for the OpenAPI document;
the views answer these dicts as they are."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from shared import jobs
from shared.proxies import PROXY_STATUSES

StatusCounts = ma.Schema.from_dict(
    {status: fields.Integer() for status in jobs.STATUSES}, name="StatusCounts"
)


class MonitoringStats(ma.Schema):
    status_counts = fields.Nested(StatusCounts)
    total_items_scraped = fields.Integer()
    jobs_last_24h = fields.Integer()
    success_rate = fields.Float(
        allow_none=True, metadata={"description": "completed / (completed + failed); null: none"}
    )
    total_jobs = fields.Integer()


class SystemHealth(ma.Schema):
    """Also the 503 answer, which then carries the error shape's detail, type and request_id."""

    redis = fields.String(metadata={"enum": ["healthy", "unhealthy"]})
    mongodb = fields.String(metadata={"enum": ["healthy", "unhealthy"]})
    api = fields.String(metadata={"enum": ["healthy", "unhealthy"]})
    workers = fields.String(metadata={"enum": ["healthy", "unhealthy"]})
    worker_count = fields.Integer()
    timestamp = fields.String(metadata={"format": "date-time"})
    status = fields.String(metadata={"enum": ["healthy", "unhealthy"]})
    detail = fields.String(metadata={"description": "503 only: what is down"})
    type = fields.String(metadata={"description": "503 only: unavailable"})
    request_id = fields.String(metadata={"description": "503 only"})


class QueueDepth(ma.Schema):
    waiting = fields.Integer()


class WorkerTasks(ma.Schema):
    active = fields.Integer()
    reserved = fields.Integer()
    active_jobs = fields.List(fields.String(allow_none=True))


class QueuesOut(ma.Schema):
    queues = fields.Dict(keys=fields.String(), values=fields.Nested(QueueDepth))
    workers = fields.Dict(keys=fields.String(), values=fields.Nested(WorkerTasks))


class ProxyStatusSummary(ma.Schema):
    count = fields.Integer()
    avg_success_rate = fields.Float(allow_none=True)


ProxiesByStatus = ma.Schema.from_dict(
    {status: fields.Nested(ProxyStatusSummary) for status in PROXY_STATUSES},
    name="ProxiesByStatus",
)


class ProxySummary(ma.Schema):
    total_proxies = fields.Integer()
    by_status = fields.Nested(ProxiesByStatus)


class ExportRow(ma.Schema):
    """One exported item: its fields, then url and scraped_at."""

    class Meta:
        unknown = ma.INCLUDE

    url = fields.String()
    scraped_at = fields.String(metadata={"format": "date-time"})


def doc_json(schema: str | type[ma.Schema], description: str = "OK") -> dict:
    """`@blp.doc` fragment: a 200 JSON answer of `schema`, for views that answer plain dicts."""
    return {
        "responses": {
            "200": {"description": description, "content": {"application/json": {"schema": schema}}}
        }
    }


EXPORT_DOC = {
    "responses": {
        "200": {
            "description": "A download (Content-Disposition: attachment), streamed",
            "content": {
                "application/json": {"schema": {"type": "array", "items": ExportRow}},
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    }
}
METRICS_DOC = {
    "responses": {
        "200": {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
}
