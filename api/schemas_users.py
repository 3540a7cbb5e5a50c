"""Marshmallow schemas of the admin's user management (API.md § Usage, quotas and politeness)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas import MAX_SKIP, Register, UTCDateTime
from api.schemas_usage import MonthUsage, QuotasIn, QuotasOut
from shared.accounts import ROLES


class UserListArgs(ma.Schema):
    skip = fields.Integer(load_default=0, validate=validate.Range(0, MAX_SKIP))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 1000))
    q = fields.String(
        validate=validate.Length(1, 100),
        metadata={"description": "part of the username or e-mail, in any case"},
    )


class AdminUserOut(ma.Schema):
    id = fields.String(attribute="_id")
    username = fields.String()
    email = fields.String()
    role = fields.String(metadata={"enum": list(ROLES)})
    active = fields.Boolean(dump_default=True)
    created_at = UTCDateTime()
    last_login = UTCDateTime(allow_none=True)
    quotas = fields.Nested(QuotasOut, metadata={"description": "in force: own, else QUOTA_*"})
    usage = fields.Nested(MonthUsage, metadata={"description": "this month (UTC)"})


class AdminUserPage(ma.Schema):
    total = fields.Integer(metadata={"description": "users matching `q`"})
    users = fields.List(fields.Nested(AdminUserOut))


class AdminUserCreate(Register):
    role = fields.String(load_default="user", validate=validate.OneOf(ROLES))


class AdminUserUpdate(ma.Schema):
    role = fields.String(validate=validate.OneOf(ROLES))
    active = fields.Boolean(
        metadata={"description": "false: tokens, keys, streams, schedules and webhooks stop"}
    )
    quotas = fields.Nested(
        QuotasIn,
        metadata={"description": "the user's own quotas (0: unlimited; null: the QUOTA_* default)"},
    )
