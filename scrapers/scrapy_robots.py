"""Scrapy's robots.txt middleware reading and keeping bodies in scrapers/robots.py."""

from __future__ import annotations

from typing import Any

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.http import Request, Response
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import build_from_crawler

from scrapers.robots import MISSING, keep, recall
from scrapers.scrapy_politeness import CRAWL_DELAY_META


class CachedRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware (same parser, same rules), reading the bodies kept by
    earlier jobs of this process before it fetches one."""

    async def robot_parser(self, request: Request) -> Any:
        url = urlparse_cached(request)
        if url.netloc not in self._parsers:
            body = recall("scrapy", f"{url.scheme}://{url.netloc}")
            if body is not MISSING:
                self.crawler.stats.inc_value("robotstxt/cached")
                self._parsers[url.netloc] = build_from_crawler(self._parserimpl, self.crawler, body)
        return await super().robot_parser(request)

    def process_request_2(self, rp: Any, request: Request) -> None:
        super().process_request_2(rp, request)
        if rp is not None and hasattr(rp, "crawl_delay"):
            agent = request.headers.get(b"User-Agent", self._default_useragent) or ""
            delay = rp.crawl_delay(agent)
            if delay:  # the fleet's spacing for this site (scrapers/scrapy_politeness.py)
                request.meta[CRAWL_DELAY_META] = float(delay)

    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        await super()._parse_robots(response, netloc, request)
        url = urlparse_cached(request)
        keep("scrapy", f"{url.scheme}://{netloc}", response.body)
