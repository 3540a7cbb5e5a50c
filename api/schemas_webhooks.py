"""Marshmallow schemas of webhooks and their deliveries (API.md § Webhooks)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas import HttpUrl, UTCDateTime
from shared.webhooks import SUBSCRIBABLE


def _event_list() -> fields.List:
    """Event types to subscribe to (a new field per schema: marshmallow binds fields)."""
    return fields.List(
        fields.String(validate=validate.OneOf(SUBSCRIBABLE)), validate=validate.Length(1, 10)
    )


class WebhookCreate(ma.Schema):
    webhook_url = HttpUrl(required=True, metadata={"example": "https://your-app.example/hook"})
    events = _event_list()
    secret = fields.String(validate=validate.Length(16, 200), load_default=None)


class WebhookUpdate(ma.Schema):
    webhook_url = HttpUrl()
    events = _event_list()
    enabled = fields.Boolean()


class WebhookOut(ma.Schema):
    id = fields.String(attribute="_id")
    webhook_url = fields.String()
    events = fields.List(fields.String())
    enabled = fields.Boolean()
    created_at = UTCDateTime()


class WebhookCreated(WebhookOut):
    secret = fields.String(metadata={"description": "shown this once"})


class DeliveryOut(ma.Schema):
    id = fields.String(attribute="_id")
    event_id = fields.String()
    event = fields.String()
    job_id = fields.String(allow_none=True)
    attempt = fields.Integer()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Float(allow_none=True)
    timestamp = UTCDateTime()
    next_retry_at = UTCDateTime(allow_none=True)
    state = fields.String()


class Queued(ma.Schema):
    id = fields.String()
    state = fields.String()


class WebhookSecret(ma.Schema):
    secret = fields.String(metadata={"description": "signs deliveries to jobs' webhook_url"})
