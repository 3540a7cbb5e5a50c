"""The crawl shape both sides of a comparison share; imported by the bare baselines too
(bench/bare_scrapy.py, bench/bare_playwright.py), so it imports nothing heavy.

The catalog is cut into up to 100 "chains" of consecutive pages. The start URLs are the first
page of each chain (`/catalog/` for page 1, `/catalog/page/K` for the others) and every page
follows its `li.next a` link, so the crawl visits every page exactly once while ~100 pages are
discoverable at any moment: concurrency matters, unlike a single next-link chain. 100 is the
service's default MAX_URLS_PER_JOB.
"""

from __future__ import annotations

import math

MAX_START_URLS = 100
ITEM_SELECTOR = "div.product"
LINK_SELECTOR = "li.next a::attr(href)"
SELECTORS = {
    "sku": "./@data-sku",
    "title": "h2.product-title::text",
    "price": "span.price::text",
    "stock": "p.stock::text",
    "tags": "ul.tags li::text",
}
USER_AGENT = "ScrapeMaster/0.1 (+https://github.com/scrapemaster)"  # the service's default


def start_urls(site: str, pages: int, chains: int = MAX_START_URLS) -> list[str]:
    """The first page of each chain of consecutive catalog pages."""
    chains = max(1, min(chains, pages))
    stride = math.ceil(pages / chains)
    firsts = range(1, pages + 1, stride)
    return [f"{site}/catalog/" if p == 1 else f"{site}/catalog/page/{p}" for p in firsts]


def js_urls(site: str, first: int, count: int) -> list[str]:
    """`count` pages of the JavaScript catalog from page `first`."""
    pages = range(first, first + count)
    return [f"{site}/js/catalog/" if p == 1 else f"{site}/js/catalog/page/{p}" for p in pages]


def service_job(site: str, pages: int, concurrency: int) -> dict:
    """The POST /jobs body of the whole-site crawl."""
    return {
        "urls": start_urls(site, pages),
        "engine": "scrapy",
        "selectors": SELECTORS,
        "config": {
            "item_selector": ITEM_SELECTOR,
            "follow_links": True,
            "link_selector": LINK_SELECTOR,
            "max_pages": pages,
            "concurrency": concurrency,
            "obey_robots": True,
            "timeout_seconds": 1800,
        },
    }


def one_page_job(site: str, page: int) -> dict:
    """The POST /jobs body of a one-page job (10 items, no link following)."""
    return {
        "url": f"{site}/catalog/page/{page}",
        "engine": "scrapy",
        "selectors": SELECTORS,
        "config": {"item_selector": ITEM_SELECTOR, "max_pages": 1},
    }
