"""The `auto` chooser: does a statically fetched page need a browser? A pure function.

The page is read by lxml's HTML parser (linear in the input, in C) over at most
`MAX_DETECT_BYTES`, then judged from the tree with plain substring tests: no backtracking
regular expression ever runs over a user's page (40 KB of `<div ` or 8,000 `<script>` tags
once took seconds here, on the crawl's thread).
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from lxml import html as lxml_html

MAX_DETECT_BYTES = 2_000_000
APP_ROOT_IDS = frozenset({"app", "root", "__next", "__nuxt", "svelte", "ember-app"})
APP_ROOT_TAGS = frozenset({"div", "main", "section"})
DOM_BUILDERS = (
    "innerHTML",
    "appendChild",
    "createElement",
    "insertAdjacentHTML",
    "ReactDOM",
    "createRoot",
    "fetch(",
    "XMLHttpRequest",
    "new Vue",
    "createApp",
    "hydrate",
    "document.write",
)
STATIC_TEXT_ENOUGH = 500


def _tree(html: str | bytes) -> Any:
    data = html.encode("utf-8", "replace") if isinstance(html, str) else html
    data = data[:MAX_DETECT_BYTES]
    if not data.strip():
        return None
    try:
        return lxml_html.document_fromstring(data)
    except (etree.ParserError, ValueError):
        return None


def visible_text(html: str | bytes) -> str:
    """The body's text without scripts, styles and noscript notices (for size only)."""
    root = _tree(html)
    return _visible(root) if root is not None else ""


def _visible(root: Any) -> str:
    body = root.find("body")
    node = body if body is not None else root
    parts = []
    for text in node.xpath(
        ".//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::noscript)]"
    ):
        parts.append(text)
    return " ".join(" ".join(parts).split())


def needs_javascript(html: str | bytes, has_selectors: bool = True) -> tuple[bool, str]:
    """(verdict, why) for a page on which the static engine found nothing.

    Signs of client-side rendering: an empty app root, a <noscript> notice asking for
    JavaScript, or scripts that build the DOM while the page itself has little text.
    """
    root = _tree(html)
    if root is None:
        return False, "static page: empty document"
    signs: list[str] = []
    for element in root.iter(*APP_ROOT_TAGS):
        empty = len(element) == 0 and not (element.text or "").strip()
        if empty and (element.get("id") or "").strip() in APP_ROOT_IDS:
            signs.append("empty app root element")
            break
    for notice in root.iter("noscript"):
        if "javascript" in notice.text_content().lower():
            signs.append("<noscript> asks for JavaScript")
            break
    text = _visible(root)
    if len(text) < STATIC_TEXT_ENOUGH:
        for script in root.iter("script"):
            code = script.text or ""
            if any(token in code for token in DOM_BUILDERS):
                signs.append(f"scripts build the page (only {len(text)} characters of static text)")
                break
    if signs:
        return True, "static fetch found no items; " + "; ".join(signs)
    return False, "static page: no sign of client-side rendering"
