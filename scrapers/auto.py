"""The `auto` chooser, the one place it decides: by measuring the first page, not by guessing.
Pure functions; both engines and the worker's routing (workers/auto_flow.py) call them.

The static engine extracts the first page; when that gives no items (or a selector matched
nothing) on a page that has scripts, the page is rendered in Chromium and the same selectors
run again. The browser is chosen only when the render found more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from scrapers.engine import AutoPlan
from scrapers.pages import PageOutcome
from shared.actions import required_decision
from shared.jobspec import AutoDecision, FirstPage, JobConfig

PLAYWRIGHT = "playwright"
SCRAPY = "scrapy"


def figures(outcome: PageOutcome, url: str) -> FirstPage:
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


def browser_options(config: JobConfig | Mapping[str, Any]) -> list[str]:
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


def rendered_verdict(static: FirstPage, rendered: FirstPage) -> tuple[str, str]:
    """(engine, reason) once the first page was rendered: the browser wins only with more."""
    more = (rendered["values"], rendered["items"]) > (static["values"], static["items"])
    engine = PLAYWRIGHT if more else SCRAPY
    reason = f"static: {_n(static['items'], 'item')}; rendered: {rendered['items']} → {engine}"
    if rendered["items"] == static["items"] and rendered["values"] != static["values"]:
        reason = (
            f"static: {_n(static['items'], 'item')}, {_n(static['values'], 'value')}; rendered: "
            f"{_n(rendered['items'], 'item')}, {_n(rendered['values'], 'value')} → {engine}"
        )
    return engine, reason


# ---------------------------------------------------------------- the engines' first page


@dataclass(frozen=True)
class StaticFirstPage:
    """The static engine's first page, judged: stop there for the browser (`render`), or
    crawl on (the decision is scrapy's)."""

    render: bool
    reason: str
    first_page: FirstPage


def judge_static(
    outcome: PageOutcome, url: str, config: JobConfig | Mapping[str, Any], plan: AutoPlan
) -> StaticFirstPage:
    """The static engine's first page under `plan` (a probe)."""
    wants = browser_options(config) if plan.probe_options else []
    render, why = static_verdict(outcome, url, wants)
    return StaticFirstPage(render, why, figures(outcome, url))


NOT_TEXT = "static: the first page is not text → scrapy"


def static_decision(first_page: FirstPage | None, reason: str) -> AutoDecision | None:
    """What a static crawl that did not hand over decided (None: it did not probe a page)."""
    if first_page is None:
        return None
    return {
        "engine": SCRAPY,
        "reason": reason,
        "static_items": first_page["items"],
        "rendered_items": None,
    }


@dataclass(frozen=True)
class RenderedFirstPage:
    """The browser's first page, judged: `decision` when it compared (None when it checked a
    remembered decision), `back_to_static` when the job returns to the static engine (this
    page's items are then left to it), `note` a job warning."""

    first_page: FirstPage
    decision: AutoDecision | None = None
    back_to_static: bool = False
    note: str | None = None


REMEMBERED_FOUND_NOTHING = (
    "the remembered engine (playwright) found nothing on the first page: the site will be "
    "measured again on its next auto job"
)


def judge_rendered(outcome: PageOutcome, url: str, plan: AutoPlan) -> RenderedFirstPage:
    """The browser's first page under `plan` (compare with the static figures, or check)."""
    rendered = figures(outcome, url)
    if plan.compare_with is not None:
        engine, reason = rendered_verdict(plan.compare_with, rendered)
        decision: AutoDecision = {
            "engine": engine,
            "reason": reason,
            "static_items": plan.compare_with["items"],
            "rendered_items": rendered["items"],
        }
        return RenderedFirstPage(rendered, decision, back_to_static=engine != PLAYWRIGHT)
    note = None if rendered["items"] else REMEMBERED_FOUND_NOTHING
    return RenderedFirstPage(rendered, note=note)


# ---------------------------------------------------------------- the worker's routing


@dataclass(frozen=True)
class Routing:
    """Where a claimed `auto` job goes: to `route`'s queue now with `decision`, or runs on
    this queue's engine with `auto`. `recalled`: the site's memory was used (to count)."""

    route: str | None = None
    decision: AutoDecision | None = None
    auto: AutoPlan = AutoPlan()
    recalled: bool = False


def routing(
    engine_name: str,
    decided: AutoDecision | None,
    probe: FirstPage | None,
    remembered: Mapping[str, Any] | None,
    learned: AutoDecision | None = None,
    required: list[str] | tuple[str, ...] = (),
) -> Routing:
    """Where a claimed `auto` job on `engine_name`'s queue goes: `decided` its stored
    decision, `probe` the static engine's figures handed over, `remembered` the site's memory
    record (or None) and `learned` the decision taken from it; `required` the job's options
    only a browser carries out (shared.actions.browser_required): then the browser, unmeasured."""
    if required:
        if engine_name == PLAYWRIGHT:
            return Routing()
        chosen = cast(AutoDecision, required_decision(list(required)))
        return Routing(route=PLAYWRIGHT, decision=chosen)
    if engine_name == PLAYWRIGHT:
        if probe:
            return Routing(auto=AutoPlan(compare_with=probe))
        if decided is not None and decided.get("engine") == PLAYWRIGHT:
            return Routing(auto=AutoPlan(check_first=True))
        return Routing()
    if decided is not None and decided.get("engine") == PLAYWRIGHT:
        return Routing(route=PLAYWRIGHT, decision=decided)
    if decided is not None and decided.get("engine") == SCRAPY:
        return Routing()  # measured already (handed back by a render): no probe
    if remembered is not None and remembered["engine"] == PLAYWRIGHT:
        return Routing(route=PLAYWRIGHT, decision=learned, recalled=True)
    # a site measured static already: only an empty first page makes it render again, not
    # the job's browser-only options (scroll, wait_for) alone
    return Routing(auto=AutoPlan(probe=True, probe_options=remembered is None))


@dataclass(frozen=True)
class AfterRun:
    """What an `auto` job's ended run means: hand it to `hand_to` (an engine's queue) with
    `fields`, or finish it (with `fields`); `remember` the decision for the site, or
    `forget` the site's memory."""

    hand_to: str | None = None
    reason: str | None = None
    fields: dict[str, Any] | None = None
    remember: AutoDecision | None = None
    forget: bool = False


def after_run(
    engine_name: str,
    needs_javascript: bool,
    reason: str,
    first_page: FirstPage | None,
    decision: AutoDecision | None,
    failed: bool,
    stored: AutoDecision | None,
    site: str,
) -> AfterRun:
    """The decision of an `auto` job's run on `engine_name`; `stored`: the job's decision
    before the run (a learned one is forgotten when its engine found nothing)."""
    if needs_javascript and engine_name == SCRAPY:
        return AfterRun(hand_to=PLAYWRIGHT, reason=reason, fields={"auto_probe": first_page})
    remember: AutoDecision | None = None
    if decision is not None and not failed:
        remember = decision = AutoDecision(**decision, learned=False, site=site)
    if decision is not None and engine_name == PLAYWRIGHT and decision["engine"] == SCRAPY:
        fields: dict[str, Any] = {"auto_probe": None, "auto_decision": decision}
        return AfterRun(hand_to=SCRAPY, fields=fields, remember=remember)
    learned = stored is not None and stored.get("learned", False)
    forget = learned and first_page is not None and not first_page["items"]
    fields = {"auto_decision": decision or stored, "auto_probe": None}
    return AfterRun(fields=fields, remember=remember, forget=forget)
