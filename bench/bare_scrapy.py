"""Bare Scrapy baseline: one CrawlerProcess in a fresh interpreter, items counted in memory.

    python -m bench.bare_scrapy --site http://127.0.0.1:PORT --pages 1000 --concurrency 8

Run by `python -m bench scrapy`. Prints one line on stdout, RESULT {json}: pages, items,
distinct SKUs, import/setup/crawl seconds. Items are appended to a list in the callback, as the
service hands them to its sink. The crawl shape and selectors come from bench/shape.py, the
same as the service job's.
"""

from __future__ import annotations

import time

T_PROCESS = time.perf_counter()  # before the heavy imports

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import scrapy  # noqa: E402
from scrapy import signals  # noqa: E402
from scrapy.crawler import CrawlerProcess  # noqa: E402

from bench.shape import ITEM_SELECTOR, LINK_SELECTOR, SELECTORS, USER_AGENT, start_urls  # noqa: E402

T_IMPORTED = time.perf_counter()


def _is_xpath(query: str) -> bool:
    return query.lstrip().startswith(("/", "(", "./", "../"))


def _field(node, query: str):
    found = node.xpath(query) if _is_xpath(query) else node.css(query)
    values = [v.strip() for v in found.getall()]
    values = [v for v in values if v]
    if not values:
        return None
    return values[0] if len(values) == 1 else values


class CatalogSpider(scrapy.Spider):
    name = "bench-catalog"

    def __init__(self, urls: list[str], sink: list[dict], **kwargs):
        super().__init__(**kwargs)
        self.urls = urls
        self.sink = sink
        self.pages = 0

    async def start(self):
        for url in self.urls:
            yield scrapy.Request(url, callback=self.parse)

    def parse(self, response):
        self.pages += 1
        for box in response.css(ITEM_SELECTOR):
            self.sink.append({name: _field(box, query) for name, query in SELECTORS.items()})
        for href in response.css(LINK_SELECTOR).getall():
            yield response.follow(href, callback=self.parse)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--site", required=True)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)

    items: list[dict] = []
    marks: dict[str, float] = {}
    status_counts: dict[int, int] = {}

    def on_response(response, request, **_):
        now = time.perf_counter()
        marks.setdefault("first_response", now)
        marks["last_response"] = now
        status_counts[response.status] = status_counts.get(response.status, 0) + 1

    t_setup = time.perf_counter()
    process = CrawlerProcess(
        {
            "ROBOTSTXT_OBEY": True,
            "CONCURRENT_REQUESTS": args.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
            "DOWNLOAD_DELAY": 0,
            "USER_AGENT": USER_AGENT,
            "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
            "LOG_LEVEL": "WARNING",
            "TELNETCONSOLE_ENABLED": False,
        }
    )
    crawler = process.create_crawler(CatalogSpider)
    crawler.signals.connect(on_response, signal=signals.response_received)
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    process.crawl(crawler, urls=start_urls(args.site, args.pages), sink=items)
    process.start()
    t_end = time.perf_counter()
    cpu_end = time.process_time()

    spider_pages = getattr(crawler.spider, "pages", 0)
    result = {
        "pages": spider_pages,
        "items": len(items),
        "distinct_skus": len({i.get("sku") for i in items}),
        "responses_by_status": status_counts,  # includes robots.txt
        "import_s": round(T_IMPORTED - T_PROCESS, 3),
        "setup_s": round(t_start - t_setup, 3),
        "crawl_s": round(t_end - t_start, 3),
        "crawl_cpu_s": round(cpu_end - cpu_start, 3),
        "first_to_last_response_s": round(
            marks.get("last_response", 0) - marks.get("first_response", 0), 3
        ),
        "finish_reason": crawler.stats.get_value("finish_reason"),
        "scrapy_version": scrapy.__version__,
    }
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
