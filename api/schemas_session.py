"""Schemas of a job's login and cookies (API.md § Browser actions, logins and sessions), and the
masked views of configs that hold secrets."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import ValidationError, fields, validate, validates_schema

from shared.jobspec import MAX_COOKIES, MAX_LOGIN_FIELDS, domain_problem
from shared.selectors import compile_selector
from shared.sessions import SAME_SITE
from shared.vault import mask_config


def _parses(text: str) -> None:
    try:
        compile_selector(text)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


_SELECTOR: list[Any] = [validate.Length(1, 500), _parses]
_VALUE = validate.Length(0, 4000)


# `fields` is a field name here, so the schema is made from a dict (it would shadow the module)
LoginSchema = ma.Schema.from_dict(
    {
        "url": fields.String(
            required=True,
            metadata={"description": "the login page", "example": "https://example.com/login"},
        ),
        "fields": fields.Dict(
            keys=fields.String(validate=_SELECTOR),
            values=fields.String(validate=_VALUE),
            required=True,
            validate=validate.Length(1, MAX_LOGIN_FIELDS),
            metadata={
                "description": "CSS selector → value, filled in order; values are secrets",
                "example": {"#username": "me", "#password": "secret"},
            },
        ),
        "submit": fields.String(
            allow_none=True,
            validate=_SELECTOR,
            metadata={"description": "clicked to submit; absent: Enter in the last field"},
        ),
        "success_selector": fields.String(
            allow_none=True,
            validate=_SELECTOR,
            metadata={
                "description": "present once logged in, else the job fails login_failed; "
                "absent: the first field must be gone after submitting"
            },
        ),
    },
    name="JobLogin",
)


class CookieSchema(ma.Schema):
    name = fields.String(required=True, validate=validate.Length(1, 256))
    value = fields.String(required=True, validate=_VALUE, metadata={"description": "a secret"})
    domain = fields.String(
        validate=validate.Length(1, 253),
        metadata={
            "description": "default: the host of the job's first URL; a leading dot "
            "(.example.com) includes its subdomains"
        },
    )
    path = fields.String(load_default="/", validate=validate.Length(1, 1000))
    expires = fields.Float(metadata={"description": "Unix time; absent: a session cookie"})
    http_only = fields.Boolean()
    secure = fields.Boolean()
    same_site = fields.String(validate=validate.OneOf(SAME_SITE))

    @validates_schema
    def plain_text(self, data: dict[str, Any], **kwargs: Any) -> None:
        bad = [c for c in data.get("name", "") + data.get("value", "") if c in ";\r\n\0"]
        if bad:
            raise ValidationError("A cookie's name and value cannot hold ; or line breaks.")
        domain = data.get("domain")
        if domain is not None:
            problem = domain_problem(domain.lstrip("."))
            if problem:
                raise ValidationError({"domain": [f"Not a valid domain: {problem}."]})


def cookie_list() -> fields.List:
    return fields.List(
        fields.Nested(CookieSchema),
        allow_none=True,
        validate=validate.Length(max=MAX_COOKIES),
        metadata={"description": "cookies of a session the user already has; values are secrets"},
    )


class MaskedConfig(fields.Dict):
    """A job's config as answered: each secret (login values, cookie values, Authorization
    and Cookie headers) is "***"."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else mask_config(value)


class MaskedJobBody(fields.Dict):
    """A schedule's job body as answered: its config's secrets are "***"."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {**value, "config": mask_config(value.get("config"))}
