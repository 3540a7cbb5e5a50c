"""One fetched page through the job's extraction, the same in both engines: items, the page's
main content (`config.output`), and what went wrong on it (JSON, a DOM too deep to parse).

Nothing here fails silently: every page whose content could not be read says why, in the job
log and, summed over the crawl, in the job's `warnings`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from parsel import Selector as Page

from scrapers import extract
from scrapers.crawl_rules import DEEP_DOM, max_depth_of
from shared.jobspec import JobSpec, content_formats
from shared.selectors import is_jmespath

_TRAFILATURA_FORMAT = {"markdown": "markdown", "text": "txt", "html": "html"}

# kinds of page problems -> the job warning, given the number of pages
WARNINGS = {
    "json": "{n} page(s) were JSON: CSS and XPath selectors do not apply to JSON, so they gave "
    "no items (select from JSON with jmespath: selectors, e.g. jmespath:items[*])",
    "deep_dom": "{n} page(s) nest their HTML deeper than 2048 levels: the parser stops there, "
    "and nothing below that depth could be extracted",
    "no_content": "no main content found on {n} page(s) (config.output)",
    "extract_error": "extraction failed on {n} page(s); the job log names them",
}


@dataclass
class PageOutcome:
    """What one page gave: its items, log lines for it, and a problem kind (or None)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problem: str | None = None
    has_scripts: bool = False
    selector: Page | None = None  # the parsed page, for links; None when it was not read

    @property
    def filled(self) -> int:
        """Items with at least one value: what `auto` compares between engines."""
        return sum(1 for item in self.items if any(v is not None for v in item.values()))


def is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in ("application/json", "text/json") or kind.endswith("+json")


def _has_scripts(body: bytes | str) -> bool:
    head = body[:2_000_000]
    return (b"<script" in head.lower()) if isinstance(head, bytes) else ("<script" in head.lower())


def read_page(spec: JobSpec, body: bytes | str, url: str, content_type: str = "") -> PageOutcome:
    """Extract one page of job `spec`; never raises for a page's content."""
    outcome = PageOutcome()
    cfg = spec.config
    if is_json(content_type):
        if content_formats(cfg) or not _selects_json(spec):
            outcome.problem = "json"
            outcome.notes.append(
                f"{url} is JSON ({content_type.split(';')[0]}): CSS/XPath selectors and page "
                "content output do not apply; no items from it (use jmespath: selectors)"
            )
            return outcome
        return _read_json(spec, body, url, outcome)
    outcome.has_scripts = _has_scripts(body)
    try:
        page = extract.parse(body, url)
        outcome.selector = page
        budget = extract.page_budget(spec)
        if content_formats(cfg):
            outcome.items = _content_items(spec, page, body, url, outcome)
        else:
            outcome.items = extract.extract_items(
                page, spec.selectors, cfg.get("item_selector"), budget
            )
        outcome.notes.extend(f"{url}: {note}" for note in sorted(budget.notes))
    except Exception as exc:  # a selector on an odd document: say so, keep crawling
        outcome.problem = "extract_error"
        outcome.notes.append(f"extraction failed on {url}: {type(exc).__name__}: {exc}")
        return outcome
    if not outcome.filled and outcome.selector is not None:
        depth = max_depth_of(outcome.selector.root)
        if depth >= DEEP_DOM:
            outcome.problem = "deep_dom"
            outcome.notes.append(
                f"{url}: the HTML nests {depth}+ levels deep; the parser stopped at 2048 levels "
                "and content below was not extracted"
            )
    return outcome


def _selects_json(spec: JobSpec) -> bool:
    """Whether the job has JMESPath selectors (for JSON pages)."""
    cfg = spec.config
    queries = [*spec.selectors.values(), cfg.get("item_selector"), cfg.get("link_selector")]
    return any(is_jmespath(query) for query in queries)


def _read_json(spec: JobSpec, body: bytes | str, url: str, outcome: PageOutcome) -> PageOutcome:
    """A JSON page through the job's jmespath: selectors."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        if text.lstrip().startswith("<"):  # a browser shows JSON inside a page of its own
            shown = extract.parse(text, url)
            text = (
                shown.xpath("string((//pre)[1])").get() or shown.xpath("string(//body)").get() or ""
            )
        page = extract.parse_json(text, url)
        budget = extract.page_budget(spec)
        outcome.items = extract.extract_items(
            page, spec.selectors, spec.config.get("item_selector"), budget
        )
    except ValueError as exc:  # not JSON after all
        outcome.problem = "extract_error"
        outcome.notes.append(f"{url} says it is JSON but does not parse: {exc}")
        return outcome
    outcome.selector = page
    outcome.notes.extend(f"{url}: {note}" for note in sorted(budget.notes))
    return outcome


def _content_items(
    spec: JobSpec, page: Page, body: bytes | str, url: str, outcome: PageOutcome
) -> list[dict[str, Any]]:
    """One item per page: its title, its main content in each asked format, and the job's
    page-level selectors. The formats share MAX_PAGE_BYTES between them."""
    import trafilatura

    formats = content_formats(spec.config)
    share = max(1, spec.max_page_bytes // max(1, len(formats)))
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    item: dict[str, Any] = {"title": extract.field_value(page, "title::text")}
    missing = False
    for name in formats:
        value = trafilatura.extract(
            text,
            url=url,
            output_format=_TRAFILATURA_FORMAT[name],
            include_links=name != "text",
            include_tables=True,
            include_comments=False,
            favor_recall=True,
            with_metadata=False,
        )
        if value is None:
            missing = True
        elif len(value) > share:
            outcome.notes.append(f"{url}: {name} cut to {share} characters (MAX_PAGE_BYTES)")
            value = value[:share]
        item[name] = value
    if spec.selectors:
        budget = extract.page_budget(spec)
        for name, query in spec.selectors.items():
            item.setdefault(name, extract.field_value(page, query, budget))
    if missing:
        outcome.problem = "no_content"
        outcome.notes.append(f"{url}: no main content found")
    return [item]


class PageProblems:
    """Problem kinds counted over a crawl, and which fields ever got a value: the job's
    warnings."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.filled = 0  # items with at least one value
        self.fields: set[str] = set()
        self.matched: set[str] = set()

    def add(self, outcome: PageOutcome) -> None:
        if outcome.problem:
            self.counts[outcome.problem] += 1
        self.filled += outcome.filled
        for item in outcome.items:
            self.fields.update(item)
            self.matched.update(name for name, value in item.items() if value is not None)

    def warnings(self, spec: JobSpec, pages_ok: int) -> list[str]:
        found = [WARNINGS[kind].format(n=n) for kind, n in sorted(self.counts.items())]
        if content_formats(spec.config):
            return found
        pages = pages_ok - self.counts["json"] - self.counts["deep_dom"]
        wanted = spec.selectors or spec.config.get("item_selector")
        if wanted and self.filled == 0 and pages > 0:
            found.insert(0, f"selectors matched nothing on {pages} page(s)")
        elif spec.selectors and self.filled:
            never = sorted(set(spec.selectors) - self.matched)
            if never:
                names = ", ".join(never)
                found.insert(0, f"the selectors of {names} matched nothing on {pages} page(s)")
        return found
