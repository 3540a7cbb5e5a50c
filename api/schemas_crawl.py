"""Schemas of the crawl controls, page content output and `auto`'s decision (job config and
job output fields)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import ValidationError, fields, validate

from shared.jobspec import MAX_PATTERNS, OUTPUTS, domain_problem, pattern_problem


class UrlPattern(fields.String):
    """A glob over URLs (`*`, `?`, `[...]`): the path and query, or the whole URL when it
    starts with http:// or https://."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = pattern_problem(text)
        if problem:
            raise ValidationError(f"Not a valid URL pattern: {problem}.")
        return text


class DomainName(fields.String):
    """A host name a crawl may follow links to (its subdomains included)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = domain_problem(text)
        if problem:
            raise ValidationError(f"Not a valid domain: {problem}.")
        return text.strip().lower().rstrip(".")


class OutputFormats(fields.Field):
    """Page content formats (markdown, text, html) and files (screenshot, pdf): one of them,
    or a list of them."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[str]:
        chosen = [value] if isinstance(value, str) else value
        if (
            not isinstance(chosen, list)
            or not chosen
            or not all(isinstance(v, str) and v in OUTPUTS for v in chosen)
        ):
            raise ValidationError(
                f"Must be one of {', '.join(OUTPUTS)}, or a non-empty list of them."
            )
        return list(dict.fromkeys(chosen))

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return value


def pattern_list(description: str) -> fields.List:
    return fields.List(
        UrlPattern(),
        allow_none=True,
        validate=validate.Length(max=MAX_PATTERNS),
        metadata={"description": description},
    )


class AutoDecision(ma.Schema):
    engine = fields.String(metadata={"description": "scrapy or playwright"})
    reason = fields.String(metadata={"example": "static: 0 items; rendered: 10 → playwright"})
    static_items = fields.Integer(allow_none=True)
    rendered_items = fields.Integer(allow_none=True)
    learned = fields.Boolean(metadata={"description": "taken from the site's memory"})
    site = fields.String(metadata={"description": "host and path pattern it applies to"})
