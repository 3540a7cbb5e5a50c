"""Extraction shared by every engine: a selector means the same in Scrapy and Playwright."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import jmespath
from parsel import Selector as Page

from shared.schemes import is_web_url
from shared.selectors import compile_selector


def _select(node: Page, query: str) -> list[Any]:
    """Matches of `query` in `node`: JMESPath on a JSON page, CSS or XPath on HTML; a
    selector of the other kind matches nothing."""
    sel = compile_selector(query)
    if (sel.kind == "jmespath") != (node.type == "json"):
        return []
    if sel.kind == "jmespath":
        return node.jmespath(sel.query)
    return node.xpath(sel.query) if sel.kind == "xpath" else node.css(sel.query)


def _value(match: Any) -> str:
    root = match.root
    if isinstance(root, str):
        return root.strip()
    return match.get().strip()


@lru_cache(maxsize=4096)
def _expression(query: str) -> Any:
    return jmespath.compile(query)


def _json_field(node: Page, query: str, budget: Budget | None) -> Any:
    """A field of a JSON page: exactly what its JMESPath expression gives (a string, number,
    list or object; None for nothing or for a CSS/XPath selector), within the budget."""
    sel = compile_selector(query)
    if sel.kind != "jmespath":
        return None
    value = _expression(sel.query).search(node.root)
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):  # text, bounded as an HTML field's text is
        value = value.strip()
        return value if budget is None else budget.take(value)
    if budget is not None:  # a number, list or object: whole or not at all
        size = len(json.dumps(value, default=str))
        if size > budget.max_field_bytes:
            budget.notes.add(f"field values over MAX_FIELD_BYTES={budget.max_field_bytes} dropped")
            return None
        if budget.left < size:
            budget.left = 0
            budget.notes.add("the page's extracted text passed its limit; later fields dropped")
            return None
        budget.left -= size
    return value


class Budget:
    """Bounds on what one page may produce: items, bytes per field, bytes in all. An
    absolute XPath inside an item selector copies the whole page into every item, so without
    these one page could take a worker's memory."""

    def __init__(self, max_items: int, max_field_bytes: int, max_total_bytes: int) -> None:
        self.max_items = max_items
        self.max_field_bytes = max_field_bytes
        self.left = max_total_bytes
        self.notes: set[str] = set()

    def take(self, value: str) -> str | None:
        """`value`, cut to the field limit; None once the page's total is spent."""
        if self.left <= 0:
            return None
        if len(value) > self.max_field_bytes:
            self.notes.add(f"field values cut to MAX_FIELD_BYTES={self.max_field_bytes}")
            value = value[: self.max_field_bytes]
        self.left -= len(value)
        if self.left <= 0:
            self.notes.add("the page's extracted text passed its limit; later fields dropped")
        return value


def field_value(node: Page, query: str, budget: Budget | None = None) -> Any:
    """One match: a string (on a JSON page, the value); several: a list; none: None. Blank
    text nodes are not matches."""
    if node.type == "json":
        return _json_field(node, query, budget)
    values: list[Any] = []
    used = 0
    for match in _select(node, query):
        value = _value(match)
        if value == "" or value is None:
            continue
        if budget is not None:
            if used >= budget.max_field_bytes:
                budget.notes.add(f"field values cut to MAX_FIELD_BYTES={budget.max_field_bytes}")
                break
            room = budget.max_field_bytes - used
            if len(value) > room:
                budget.notes.add(f"field values cut to MAX_FIELD_BYTES={budget.max_field_bytes}")
            taken = budget.take(value[:room])
            if taken is None:
                break
            value, used = taken, used + len(taken)
        values.append(value)
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def parse(html: str | bytes, url: str) -> Page:
    """A parsel selector over the page's HTML."""
    if isinstance(html, bytes):
        return Page(body=html, base_url=url, type="html")
    return Page(text=html, base_url=url, type="html")


def parse_json(text: str, url: str) -> Page:
    """A parsel selector over a JSON document (raises ValueError when it is not JSON)."""
    json.loads(text)  # parsel would treat text that is not JSON as a string value
    return Page(text=text, base_url=url, type="json")


def extract_items(
    page: Page,
    selectors: dict[str, str],
    item_selector: str | None = None,
    budget: Budget | None = None,
) -> list[dict[str, Any]]:
    """The items of one page.

    With `item_selector`, one item per matching container, fields relative to it. Without, one
    item per page, or none when no field matched. Without selectors, the page title. With a
    `budget`, items past its count and text past its sizes are dropped (its `notes` say so).
    """
    if not selectors:
        selectors = {"title": "title::text"}
    if item_selector:
        containers = _select(page, item_selector)
        if budget is not None and len(containers) > budget.max_items:
            budget.notes.add(
                f"{len(containers)} items on the page; kept MAX_ITEMS_PER_PAGE={budget.max_items}"
            )
            containers = containers[: budget.max_items]
        items = []
        for container in containers:
            if budget is not None and budget.left <= 0:
                break
            items.append(
                {name: field_value(container, query, budget) for name, query in selectors.items()}
            )
        return items
    item = {name: field_value(page, query, budget) for name, query in selectors.items()}
    return [item] if any(v is not None for v in item.values()) else []


def observe(sink: Any, url: str, page: Page) -> None:
    """Show the parsed page to a sink that wants it (the selector preview reads its title)."""
    seen = getattr(sink, "document", None)
    if seen is not None:
        seen(url, page)


def page_budget(spec: Any) -> Budget:
    """The extraction limits of one page of job `spec` (a JobSpec)."""
    return Budget(
        spec.max_items_per_page,
        spec.max_field_bytes,
        max(spec.max_page_bytes, spec.max_field_bytes) * 2,
    )


def _same_site(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.hostname, pa.port) == (pb.hostname, pb.port)


def extract_links(
    page: Page, page_url: str, link_selector: str | None = None, same_site: bool = True
) -> list[str]:
    """Absolute http(s) links to follow: those `link_selector` picks, else <a href> on the same
    site (`same_site`) or anywhere (the job's allowed_domains decide)."""
    if link_selector:
        raw = []
        for match in _select(page, link_selector):
            root = match.root
            if isinstance(root, str):
                raw.append(root)
            elif match.type != "json":
                raw.append(match.attrib.get("href"))
    elif page.type == "json":
        raw = []  # links of a JSON page are only those link_selector names
    else:
        raw = page.css("a::attr(href)").getall()
    seen: set[str] = set()
    links: list[str] = []
    for href in raw:
        if not href:
            continue
        absolute = urldefrag(urljoin(page_url, href.strip()))[0]
        if not is_web_url(absolute):  # file:, javascript:, mailto: … never leave a worker
            continue
        if not link_selector and same_site and not _same_site(absolute, page_url):
            continue
        if absolute not in seen:
            seen.add(absolute)
            links.append(absolute)
    return links
