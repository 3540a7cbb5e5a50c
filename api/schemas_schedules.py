"""Marshmallow schemas of schedules, their runs and changes (API.md § Scheduled jobs)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas import JobCreate, UTCDateTime
from api.schemas_session import MaskedJobBody
from shared import changes, schedules

_CRON = {"example": "0 */4 * * *", "description": "five fields, in `timezone`"}
_KEY = {
    "example": "sku",
    "description": "item field that identifies an item across runs (change detection); "
    "without it an item is identified by a hash of all its fields",
}


def _name(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(1, 200), **kwargs)


def _cron(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(1, 200), metadata=_CRON, **kwargs)


def _timezone(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(1, 64), metadata={"example": "UTC"}, **kwargs)


def _overlap(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.OneOf([schedules.OVERLAP_SKIP, schedules.OVERLAP_ALLOW]), **kwargs
    )


def _key() -> fields.String:
    return fields.String(validate=validate.Length(1, 100), allow_none=True, metadata=_KEY)


class ScheduleCreate(ma.Schema):
    name = _name(required=True)
    cron = _cron(required=True)
    timezone = _timezone(load_default="UTC")
    enabled = fields.Boolean(load_default=True)
    overlap = _overlap(load_default=schedules.OVERLAP_SKIP)
    key = _key()
    job = fields.Nested(JobCreate, required=True, metadata={"description": "a POST /jobs body"})


class ScheduleUpdate(ma.Schema):
    name = _name()
    cron = _cron()
    timezone = _timezone()
    enabled = fields.Boolean()
    overlap = _overlap()
    key = _key()
    job = fields.Nested(JobCreate, metadata={"description": "replaces the whole job body"})


class ScheduleOut(ma.Schema):
    id = fields.String(attribute="_id")
    name = fields.String()
    cron = fields.String()
    timezone = fields.String()
    enabled = fields.Boolean()
    overlap = fields.String()
    key = fields.String(allow_none=True)
    job = MaskedJobBody(metadata={"description": "the job body; secrets answered as ***"})
    next_run = UTCDateTime(allow_none=True)
    last_run = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class RunStarted(ma.Schema):
    job_id = fields.String()
    run_id = fields.String()
    status = fields.String(metadata={"example": "queued"})


class HistoryArgs(ma.Schema):
    schedule_id = fields.String(validate=validate.Length(1, 64))
    status = fields.String(validate=validate.OneOf(schedules.RUN_STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    skip = fields.Integer(load_default=0, validate=validate.Range(0, 1_000_000))


class RunOut(ma.Schema):
    id = fields.String(attribute="_id")
    schedule_id = fields.String()
    schedule_name = fields.String(allow_none=True)
    scheduled_for = UTCDateTime()
    trigger = fields.String()
    status = fields.String()
    job_id = fields.String(allow_none=True)
    started_at = UTCDateTime(allow_none=True)
    completed_at = UTCDateTime(allow_none=True)
    items_scraped = fields.Integer()
    error = fields.String(allow_none=True)
    changes = fields.Dict(
        allow_none=True,
        metadata={"description": "added, removed, changed, unchanged; null on a first run"},
    )


class HistoryPage(ma.Schema):
    runs = fields.List(fields.Nested(RunOut))
    total = fields.Integer()
    limit = fields.Integer()
    skip = fields.Integer()


class ChangeArgs(ma.Schema):
    run = fields.String(
        validate=validate.Length(1, 64),
        metadata={"description": "a run id; default: the newest run with changes counted"},
    )
    kind = fields.String(validate=validate.OneOf(changes.KINDS))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    skip = fields.Integer(load_default=0, validate=validate.Range(0, 10_000_000))


class ChangeOut(ma.Schema):
    kind = fields.String(metadata={"example": "changed"})
    key = fields.String(metadata={"description": "the item's identity (its `key` field)"})
    before = fields.Dict(allow_none=True, metadata={"description": "fields in the earlier run"})
    after = fields.Dict(allow_none=True, metadata={"description": "fields in this run"})


class ChangesPage(ma.Schema):
    run_id = fields.String(allow_none=True)
    compared_with = fields.String(allow_none=True, metadata={"description": "earlier run's id"})
    counts = fields.Dict(allow_none=True)
    changes = fields.List(fields.Nested(ChangeOut))
    total = fields.Integer()
    limit = fields.Integer()
    skip = fields.Integer()
