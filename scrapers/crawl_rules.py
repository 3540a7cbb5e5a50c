"""Which URLs a crawl fetches: canonical de-duplication, include/exclude/domain rules, sitemaps.

Both engines apply the same rules, so a job follows the same links in Scrapy and Chromium.
Patterns are globs (`fnmatch`, linear in the URL), never user regular expressions.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urldefrag, urlsplit

from w3lib.url import canonicalize_url, url_query_cleaner

from shared.jobspec import JobConfig

# Query parameters that only track where a visitor came from: the same page without them.
TRACKING_PARAMS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "utm_id",
    "utm_name",
    "gclid",
    "gclsrc",
    "dclid",
    "fbclid",
    "msclkid",
    "yclid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "igshid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
)
MAX_SITEMAPS = 50  # sitemap documents one job may read (an index and the sitemaps it lists)
DEEP_DOM = 2000  # lxml stops building the tree at 2048 levels: deeper content is invisible


def clean_url(url: str) -> str:
    """`url` without its fragment and tracking parameters: what the crawl fetches."""
    url = urldefrag(url)[0]
    if "?" not in url:
        return url
    return url_query_cleaner(url, TRACKING_PARAMS, remove=True, unique=False)


def canonical(url: str) -> str:
    """The de-duplication key of `url`: cleaned, then canonicalized (sorted query, case of
    scheme and host, default port, percent-encoding), so one page is fetched once."""
    key = canonicalize_url(clean_url(url))
    parts = urlsplit(key)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port == default:
        key = key.replace(f"{parts.hostname}:{parts.port}", parts.hostname or "", 1)
    return key


def _target(pattern: str, url: str) -> str:
    """Patterns that start with a scheme match the whole URL; others the path and query."""
    if pattern.startswith(("http://", "https://")):
        return url
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _domain_ok(host: str, domains: list[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


class LinkRules:
    """A job's rules for followed links and sitemap entries (start URLs are always fetched)."""

    def __init__(self, config: JobConfig | Mapping[str, Any]) -> None:
        self.include = list(config.get("include_patterns") or [])
        self.exclude = list(config.get("exclude_patterns") or [])
        self.domains = [d.lower().rstrip(".") for d in config.get("allowed_domains") or []]

    @property
    def active(self) -> bool:
        return bool(self.include or self.exclude or self.domains)

    def why_not(self, url: str) -> str | None:
        """None when `url` may be followed, else the rule that drops it (judged on the URL
        as it would be fetched: no fragment, no tracking parameters)."""
        url = clean_url(url)
        host = urlsplit(url).hostname or ""
        if self.domains and not _domain_ok(host, self.domains):
            return "allowed_domains"
        if self.exclude and any(fnmatchcase(_target(p, url), p) for p in self.exclude):
            return "exclude_patterns"
        if self.include and not any(fnmatchcase(_target(p, url), p) for p in self.include):
            return "include_patterns"
        return None

    def allows(self, url: str) -> bool:
        return self.why_not(url) is None


class Seen:
    """URLs a job has queued, by canonical key."""

    def __init__(self) -> None:
        self._keys: set[str] = set()

    def add(self, url: str) -> bool:
        """Record `url`; False when its canonical form was queued before."""
        key = canonical(url)
        if key in self._keys:
            return False
        self._keys.add(key)
        return True

    def __contains__(self, url: object) -> bool:
        return isinstance(url, str) and canonical(url) in self._keys

    def __len__(self) -> int:
        return len(self._keys)


def read_sitemap(body: bytes, url: str, max_bytes: int) -> tuple[list[str], list[str]]:
    """(page URLs, nested sitemap URLs) of a sitemap or sitemap index (gzip allowed), using
    Scrapy's sitemap parser (lxml without entity resolution). Raises ValueError when `body`
    is not a sitemap."""
    from scrapy.utils.sitemap import Sitemap

    if body[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as unzipped:
            body = unzipped.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise ValueError(f"the unzipped sitemap is larger than MAX_PAGE_BYTES={max_bytes}")
    try:
        sitemap = Sitemap(body)
    except Exception as exc:  # lxml raises several types for a document that is not XML
        raise ValueError(f"{url} is not a sitemap (XML with <urlset> or <sitemapindex>)") from exc
    locs = [entry["loc"].strip() for entry in sitemap if entry.get("loc")]
    if sitemap.type == "sitemapindex":
        return [], locs
    if sitemap.type == "urlset":
        return locs, []
    raise ValueError(f"{url} is not a sitemap (XML with <urlset> or <sitemapindex>)")


def max_depth_of(root: Any) -> int:
    """How deeply an lxml tree nests (linear walk)."""
    from lxml import etree

    depth = deepest = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest
