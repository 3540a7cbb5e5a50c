"""The `auto` chooser: does a statically fetched page need a browser? A pure function."""

from __future__ import annotations

import re

_APP_ROOT = re.compile(
    r"<(div|main|section)[^>]*\bid\s*=\s*[\"'](app|root|__next|__nuxt|svelte|ember-app)[\"'][^>]*>"
    r"\s*</\1>",
    re.IGNORECASE,
)
_NOSCRIPT = re.compile(r"<noscript[^>]*>(.*?)</noscript>", re.IGNORECASE | re.DOTALL)
_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.IGNORECASE | re.DOTALL)
_JS_DOM = re.compile(
    r"\b(innerHTML|appendChild|createElement|insertAdjacentHTML|ReactDOM|createRoot|"
    r"fetch\(|XMLHttpRequest|new Vue|createApp|hydrate)",
)


def visible_text(html: str) -> str:
    """The body's text with scripts, styles and tags removed (rough, for size only)."""
    body = _BODY.search(html)
    text = body.group(1) if body else html
    text = _SCRIPT.sub(" ", text)
    text = re.sub(r"<style\b[^>]*>.*?</style>", " ", text, flags=re.IGNORECASE | re.DOTALL)
    text = _NOSCRIPT.sub(" ", text)
    return " ".join(_TAG.sub(" ", text).split())


def needs_javascript(html: str, has_selectors: bool = True) -> tuple[bool, str]:
    """(verdict, why) for a page on which the static engine found nothing.

    Signs of client-side rendering: an empty app root, a <noscript> notice asking for
    JavaScript, or scripts that build the DOM while the page itself has little text.
    """
    signs: list[str] = []
    if _APP_ROOT.search(html):
        signs.append("empty app root element")
    for notice in _NOSCRIPT.findall(html):
        if "javascript" in notice.lower():
            signs.append("<noscript> asks for JavaScript")
            break
    scripts = "".join(_SCRIPT.findall(html))
    text = visible_text(html)
    if _JS_DOM.search(scripts) and len(text) < 500:
        signs.append(f"scripts build the page (only {len(text)} characters of static text)")
    if signs:
        return True, "static fetch found no items; " + "; ".join(signs)
    return False, "static page: no sign of client-side rendering"
