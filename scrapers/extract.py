"""Extraction shared by every engine: a selector means the same in Scrapy and Playwright."""

from __future__ import annotations

from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from parsel import Selector as Page

from shared.selectors import compile_selector


def _select(node: Page, query: str) -> list[Any]:
    sel = compile_selector(query)
    return node.xpath(sel.query) if sel.kind == "xpath" else node.css(sel.query)


def _value(match: Any) -> str:
    root = match.root
    if isinstance(root, str):
        return root.strip()
    return match.get().strip()


def field_value(node: Page, query: str) -> str | list[str] | None:
    """One match: a string; several: a list; none: None. Blank text nodes are not matches."""
    values = [v for v in (_value(m) for m in _select(node, query)) if v != ""]
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def parse(html: str | bytes, url: str) -> Page:
    """A parsel selector over the page's HTML."""
    if isinstance(html, bytes):
        return Page(body=html, base_url=url, type="html")
    return Page(text=html, base_url=url, type="html")


def extract_items(
    page: Page, selectors: dict[str, str], item_selector: str | None = None
) -> list[dict[str, Any]]:
    """The items of one page.

    With `item_selector`, one item per matching container, fields relative to it. Without, one
    item per page, or none when no field matched. Without selectors, the page title.
    """
    if not selectors:
        selectors = {"title": "title::text"}
    if item_selector:
        return [
            {name: field_value(container, query) for name, query in selectors.items()}
            for container in _select(page, item_selector)
        ]
    item = {name: field_value(page, query) for name, query in selectors.items()}
    return [item] if any(v is not None for v in item.values()) else []


def _same_site(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.hostname, pa.port) == (pb.hostname, pb.port)


def extract_links(page: Page, page_url: str, link_selector: str | None = None) -> list[str]:
    """Absolute http(s) links to follow: those `link_selector` picks, else same-site <a href>."""
    if link_selector:
        raw = []
        for match in _select(page, link_selector):
            root = match.root
            raw.append(root if isinstance(root, str) else match.attrib.get("href"))
    else:
        raw = page.css("a::attr(href)").getall()
    seen: set[str] = set()
    links: list[str] = []
    for href in raw:
        if not href:
            continue
        absolute = urldefrag(urljoin(page_url, href.strip()))[0]
        if urlsplit(absolute).scheme not in ("http", "https"):
            continue
        if not link_selector and not _same_site(absolute, page_url):
            continue
        if absolute not in seen:
            seen.add(absolute)
            links.append(absolute)
    return links
