"""The scheme rule: only http and https URLs leave a worker (API.md § Target policy).

One function decides it for every URL a job carries or discovers: start URLs (the API's 422),
sitemap entries, links, redirects, robots.txt, the browser's navigations and frames, preview.
The scheme is read as urlsplit reads it (lower-cased, leading blanks and control characters
dropped, tabs and newlines removed), which is also how browsers read it, so `FILE:`,
` file:` and `fi\\tle:` are all `file`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

WEB_SCHEMES = frozenset({"http", "https"})


def scheme_of(url: str) -> str:
    """The scheme of `url` as a browser reads it ("" when there is none or it does not parse)."""
    try:
        return urlsplit(url.strip()).scheme.lower()
    except (ValueError, AttributeError):
        return ""


def scheme_problem(url: str) -> str | None:
    """Why `url` may not leave a worker because of its scheme, or None for http(s)."""
    scheme = scheme_of(url)
    if scheme in WEB_SCHEMES:
        return None
    named = f"{scheme[:20]}:" if scheme else "a URL without a scheme"
    return f"{named} is refused, only http and https URLs are fetched"


def is_web_url(url: str) -> bool:
    """True when `url` is http or https: the only URLs a worker ever fetches."""
    return scheme_problem(url) is None


def skipped(url: str, where: str) -> str:
    """The job-log line for a URL the rule refuses (`where`: "sitemap entry", "link", …)."""
    shown = url if len(url) <= 200 else url[:200] + "…"
    return f"skipped {where} {shown}: {scheme_problem(url)}"
