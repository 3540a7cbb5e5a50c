"""Path segments from caller-supplied ids, quoted so an id can never reach another endpoint."""

from __future__ import annotations

from urllib.parse import quote


def seg(value: str) -> str:
    """One path segment: `a/b?c` becomes `a%2Fb%3Fc`."""
    text = str(value)
    if not text:
        raise ValueError("an id must not be empty")
    return quote(text, safe="")


def params(**values: object) -> dict[str, object]:
    """Query parameters without the ones left at None."""
    return {k: v for k, v in values.items() if v is not None}
