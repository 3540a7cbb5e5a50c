"""Scrapy's HTTP download handler holding a fleet-wide site slot (shared/politeness.py) for
each request it sends.

It sits where the bytes leave, after the job's own downloader slot (its `concurrency` and
`download_delay`), so a request waits for the site's shared turn only when the job would
send it; robots.txt fetches count too. The `Crawl-delay` that CachedRobotsTxtMiddleware
found rides on `request.meta["crawl_delay"]`.
"""

from __future__ import annotations

from typing import Any

from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.http import Request, Response

from shared.politeness import for_this_loop

CRAWL_DELAY_META = "crawl_delay"


class PoliteDownloadHandler(HTTP11DownloadHandler):
    """HTTP(S) downloads that take a site slot shared by the whole fleet first."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self.job = str(crawler.settings.get("SCRAPEMASTER_JOB_ID") or id(crawler))

    async def download_request(self, request: Request) -> Response:
        async with for_this_loop().slot(request.url, self.job, request.meta.get(CRAWL_DELAY_META)):
            return await super().download_request(request)
