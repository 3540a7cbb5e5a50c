"""Selector syntax: CSS with ::text / ::attr(name), XPath, or `jmespath:` JMESPath for JSON
pages; parsed and checked without a page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import jmespath
from jmespath.exceptions import JMESPathError
from lxml import etree
from parsel.csstranslator import HTMLTranslator

MAX_SELECTOR_LENGTH = 1000
JMESPATH = "jmespath:"  # the prefix of a JMESPath selector (JSON pages)
_translator = HTMLTranslator()
# Namespaced extension functions (parsel registers EXSLT's `re:` and `set:`; lxml knows more)
# have unbounded cost: `re:test(., "^(a+)+$")` is exponential. Refused at submit.
_LITERAL = re.compile(r"\"[^\"]*\"|'[^']*'")
_EXTENSION_CALL = re.compile(r"(?<![\w.:-])([A-Za-z_][\w.-]*):([A-Za-z_][\w.-]*)\s*\(")


@dataclass(frozen=True)
class Selector:
    """One compiled selector: `kind` is "css", "xpath" or "jmespath", `query` the text the
    engine runs (a JMESPath expression without its prefix)."""

    kind: str
    query: str


def is_jmespath(query: str | None) -> bool:
    """A `jmespath:` selector, for JSON pages."""
    return isinstance(query, str) and query.lstrip().startswith(JMESPATH)


def is_xpath(query: str) -> bool:
    """XPath starts with "/", "(" or "./" (relative to an item); anything else is CSS."""
    stripped = query.lstrip()
    return stripped.startswith(("/", "(", "./", "../"))


@lru_cache(maxsize=4096)
def compile_selector(query: str) -> Selector:
    """Parse `query`; raises ValueError with a readable reason when it does not parse."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError("selector must be a non-empty string")
    if len(query) > MAX_SELECTOR_LENGTH:
        raise ValueError(f"selector longer than {MAX_SELECTOR_LENGTH} characters")
    query = query.strip()
    if is_jmespath(query):
        expression = query[len(JMESPATH) :].strip()
        if not expression:
            raise ValueError("jmespath: needs an expression, e.g. jmespath:items[*]")
        try:
            jmespath.compile(expression)
        except JMESPathError as exc:
            raise ValueError(f"invalid JMESPath: {' '.join(str(exc).split())}") from None
        return Selector("jmespath", expression)
    if is_xpath(query):
        call = _EXTENSION_CALL.search(_LITERAL.sub('""', query))
        if call:
            raise ValueError(
                f"extension function {call.group(1)}:{call.group(2)}() is not allowed: "
                "use XPath 1.0 functions (contains, starts-with, normalize-space, …)"
            )
        try:
            etree.XPath(query)
        except etree.XPathSyntaxError as exc:
            raise ValueError(f"invalid XPath: {exc}") from None
        return Selector("xpath", query)
    try:
        xpath = _translator.css_to_xpath(query)
        etree.XPath(xpath)
    except Exception as exc:  # cssselect raises several types, all meaning "does not parse"
        raise ValueError(f"invalid CSS selector: {exc}") from None
    return Selector("css", query)


def validate_selectors(selectors: dict[str, str]) -> dict[str, list[str]]:
    """Errors per field name for a {field: selector} mapping; empty when all parse."""
    errors: dict[str, list[str]] = {}
    for name, query in selectors.items():
        try:
            compile_selector(query)
        except ValueError as exc:
            errors[name] = [str(exc)]
    return errors
