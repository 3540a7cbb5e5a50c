"""Marshmallow schemas of usage and quotas (API.md § Usage, quotas and politeness)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas import UTCDateTime

QUOTA_DOC = "null: unlimited"


class QuotasOut(ma.Schema):
    concurrent_jobs = fields.Integer(allow_none=True, metadata={"description": QUOTA_DOC})
    pages_per_month = fields.Integer(allow_none=True, metadata={"description": QUOTA_DOC})
    browser_minutes_per_month = fields.Integer(allow_none=True, metadata={"description": QUOTA_DOC})
    storage_bytes = fields.Integer(allow_none=True, metadata={"description": QUOTA_DOC})


class QuotasIn(ma.Schema):
    """A user's own quotas: a number (0: unlimited), or null to use the QUOTA_* default."""

    concurrent_jobs = fields.Integer(allow_none=True, validate=validate.Range(0, 10_000))
    pages_per_month = fields.Integer(allow_none=True, validate=validate.Range(0, 10**12))
    browser_minutes_per_month = fields.Integer(allow_none=True, validate=validate.Range(0, 10**9))
    storage_bytes = fields.Integer(allow_none=True, validate=validate.Range(0, 10**15))


class Period(ma.Schema):
    start = UTCDateTime()
    end = UTCDateTime(metadata={"description": "exclusive: the next month's first instant"})


class UsageOut(ma.Schema):
    period = fields.Nested(Period)
    jobs = fields.Integer(metadata={"description": "jobs created this month"})
    pages = fields.Integer(metadata={"description": "pages fetched this month"})
    items = fields.Integer(metadata={"description": "items stored this month"})
    browser_seconds = fields.Float(metadata={"description": "browser tabs open this month"})
    bytes_stored = fields.Integer(metadata={"description": "files and eggs stored now"})
    files = fields.Integer(metadata={"description": "screenshots and PDFs stored now"})
    running_jobs = fields.Integer()
    quotas = fields.Nested(QuotasOut)


class MonthUsage(ma.Schema):
    jobs = fields.Integer()
    pages = fields.Integer()
    items = fields.Integer()
    browser_seconds = fields.Float()


class AdminUsageArgs(ma.Schema):
    group_by = fields.String(load_default="user", validate=validate.OneOf(["user", "day"]))
    date_from = fields.Date(metadata={"description": "first day (UTC), default: this month's"})
    date_to = fields.Date(metadata={"description": "last day (UTC, inclusive), default: today"})


class UsageRow(ma.Schema):
    user_id = fields.String(metadata={"description": "group_by=user"})
    username = fields.String(metadata={"description": "group_by=user"})
    day = fields.String(metadata={"description": "group_by=day: YYYY-MM-DD"})
    jobs = fields.Integer()
    pages = fields.Integer()
    items = fields.Integer()
    browser_seconds = fields.Float()


class AdminUsageOut(ma.Schema):
    group_by = fields.String()
    date_from = fields.Date()
    date_to = fields.Date()
    usage = fields.List(fields.Nested(UsageRow))
    total = fields.Nested(MonthUsage)
