"""Spiders that misbehave, for the isolation tests: each reports what it managed to do."""

import os
import time

import scrapy


class SnoopSpider(scrapy.Spider):
    """Looks for the service's secrets: its environment, and a file named by `secret_file`."""

    name = "snoop"

    def __init__(self, start: str = "", secret_file: str = "", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start]
        self.secret_file = secret_file

    def parse(self, response):
        try:
            with open(self.secret_file) as f:
                found = f.read()
        except OSError as exc:
            found = f"unreadable: {type(exc).__name__}"
        parent = "unreadable"
        try:
            with open(f"/proc/{os.getppid()}/environ", "rb") as f:
                parent = f.read().decode("utf-8", "replace")
        except OSError as exc:
            parent = f"unreadable: {type(exc).__name__}"
        yield {
            "environ": dict(os.environ),
            "secret_file": found,
            "parent_environ": parent,
            "uid": os.getuid(),
        }


class EscapeSpider(scrapy.Spider):
    """Requests `target` (a blocked address) with settings that would turn guards off."""

    name = "escape"
    custom_settings = {
        "DOWNLOADER_MIDDLEWARES_BASE": {},
        "DOWNLOADER_MIDDLEWARES": {},
        "SPIDER_MIDDLEWARES_BASE": {},
        "DOWNLOAD_HANDLERS": {"http": "scrapy.core.downloader.handlers.http2.H2DownloadHandler"},
        "TWISTED_REACTOR_ENABLED": False,
        "DNS_RESOLVER": "scrapy.resolver.CachingHostnameResolver",
        "RETRY_ENABLED": False,
    }

    def __init__(self, target: str = "", proxy: str = "", **kwargs):
        super().__init__(**kwargs)
        self.target = target
        self.proxy = proxy

    async def start(self):
        yield scrapy.Request(self.target, callback=self.got, errback=self.failed, dont_filter=True)
        if self.proxy:
            yield scrapy.Request(
                "http://example.test/",
                meta={"proxy": self.proxy},
                callback=self.got,
                errback=self.failed,
                dont_filter=True,
            )

    def got(self, response):
        yield {"reached": response.url, "status": response.status, "body": response.text[:200]}

    def failed(self, failure):
        yield {"blocked": failure.request.url, "error": repr(failure.value)[:500]}


class HogSpider(scrapy.Spider):
    """Allocates memory until it has `mb` megabytes."""

    name = "hog"

    def __init__(self, start: str = "", mb: str = "4096", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start]
        self.mb = int(mb)

    def parse(self, response):
        hoard = []
        for _ in range(self.mb):
            hoard.append(bytearray(1024 * 1024))
        yield {"allocated_mb": len(hoard)}


class SleeperSpider(scrapy.Spider):
    """Never ends: its callback blocks (a spider stuck in its own code)."""

    name = "sleeper"

    def __init__(self, start: str = "", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start]

    def parse(self, response):
        yield {"started": True}
        while True:
            time.sleep(1)


class FailingSpider(scrapy.Spider):
    """Fails as it is created."""

    name = "failing"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        raise RuntimeError("this spider cannot start")
