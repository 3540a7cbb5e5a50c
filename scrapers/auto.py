"""The `auto` chooser: decide by measuring the first page, not by guessing. Pure functions.

The static engine extracts the first page; when that gives no items (or a selector matched
nothing) on a page that has scripts, the page is rendered in Chromium and the same selectors
run again. The browser is chosen only when the render found more.
"""

from __future__ import annotations

from typing import Any

from scrapers.pages import PageOutcome


def figures(outcome: PageOutcome, url: str) -> dict[str, Any]:
    """What the first page gave: items with a value, field values in all, scripts or not."""
    values = sum(
        len(v) if isinstance(v, list) else 1
        for item in outcome.items
        for v in item.values()
        if v is not None
    )
    return {
        "url": url,
        "items": outcome.filled,
        "values": values,
        "has_scripts": outcome.has_scripts,
    }


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _empty_fields(outcome: PageOutcome) -> list[str]:
    names = {name for item in outcome.items for name in item}
    return sorted(n for n in names if all(item.get(n) is None for item in outcome.items))


def browser_options(config: dict[str, Any]) -> list[str]:
    """The job's options only a browser honours (`scroll`, `wait_for`)."""
    return [name for name in ("scroll", "wait_for") if config.get(name)]


def static_verdict(
    outcome: PageOutcome, url: str, wants: list[str] | tuple[str, ...] = ()
) -> tuple[bool, str]:
    """(render it?, why) for the first page the static engine extracted; `wants`: the job's
    browser-only options, which a static fetch cannot honour (so a page with scripts is
    rendered to compare even when it gave items)."""
    found = figures(outcome, url)
    if outcome.problem == "json":
        return False, "static: the first page is JSON; a browser would show the same → scrapy"
    empty = _empty_fields(outcome)
    if wants and outcome.has_scripts:
        return True, (
            f"static: {_n(found['items'], 'item')}; the job asks for {' and '.join(wants)}: "
            "rendering it to compare"
        )
    if found["items"] and not empty:
        return False, f"static: {_n(found['items'], 'item')} on the first page → scrapy"
    if not outcome.has_scripts:
        return (
            False,
            f"static: {_n(found['items'], 'item')} and no scripts on the first page → scrapy",
        )
    what = (
        f"{_n(found['items'], 'item')}"
        if not empty or not found["items"]
        else (f"{_n(found['items'], 'item')}, nothing for {', '.join(empty)}")
    )
    return True, f"static: {what}; the page has scripts: rendering it to compare"


def rendered_verdict(static: dict[str, Any], rendered: dict[str, Any]) -> tuple[str, str]:
    """(engine, reason) once the first page was rendered: the browser wins only with more."""
    more = (rendered["values"], rendered["items"]) > (static["values"], static["items"])
    engine = "playwright" if more else "scrapy"
    reason = f"static: {_n(static['items'], 'item')}; rendered: {rendered['items']} → {engine}"
    if rendered["items"] == static["items"] and rendered["values"] != static["values"]:
        reason = (
            f"static: {_n(static['items'], 'item')}, {_n(static['values'], 'value')}; rendered: "
            f"{_n(rendered['items'], 'item')}, {_n(rendered['values'], 'value')} → {engine}"
        )
    return engine, reason
