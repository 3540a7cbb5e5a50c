"""Schemas of the crawl controls, page content output and `auto`'s decision (job config and
job output fields)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import ValidationError, fields, validate

from shared.actions import MAX_ACTIONS
from shared.jobspec import (
    MAX_PATTERNS,
    OUTPUTS,
    browser_steps_problems,
    domain_problem,
    pattern_problem,
)


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


class Actions(fields.Field):
    """`config.actions`: browser steps, each checked by shared/actions.py (errors by index)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any] | None:
        problems = browser_steps_problems({"actions": value})
        if problems:
            by_step = {
                key.removeprefix("actions").lstrip(".") or "_schema": msgs
                for key, msgs in problems.items()
            }
            raise ValidationError(by_step.pop("_schema") if "_schema" in by_step else by_step)
        return [{k: v for k, v in step.items()} for step in value] if value else value

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return value


def actions_field() -> Actions:
    return Actions(
        allow_none=True,
        metadata={
            "description": (
                f"browser steps run in order on each start page before extraction (at most "
                f"{MAX_ACTIONS}): click, fill, press, select, wait, scroll, screenshot, evaluate"
            ),
            "example": [
                {"type": "fill", "selector": "input[name=q]", "value": "shoes"},
                {"type": "press", "key": "Enter"},
                {"type": "wait", "selector": "div.result"},
            ],
        },
    )


class NextClick(fields.String):
    """`config.next_click`: the selector of a control to click for the next page."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problems = browser_steps_problems({"next_click": text})
        if problems:
            raise ValidationError(problems["next_click"])
        return text.strip()
