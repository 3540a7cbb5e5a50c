"""Spiders that behave: a catalog crawl with arguments, and one that logs at every level."""

import logging

import scrapy

from demo_spiders.items import ProductItem


class CatalogSpider(scrapy.Spider):
    """Follows the catalog's "next" links from `start`; `tag` is copied into every item and
    `limit` stops after that many pages."""

    name = "catalog"

    def __init__(self, start: str = "", tag: str = "", limit: str = "100", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start]
        self.tag = tag
        self.limit = int(limit)
        self.seen = 0

    def parse(self, response):
        self.seen += 1
        for product in response.css("div.product"):
            yield ProductItem(
                sku=product.attrib.get("data-sku"),
                title=product.css("h2.product-title::text").get(),
                price=product.css("span.price::text").get(),
                tag=self.tag,
            )
        following = response.css("li.next a::attr(href)").get()
        if following and self.seen < self.limit:
            yield response.follow(following, self.parse)


class ChattySpider(scrapy.Spider):
    """Logs at every level and yields one item."""

    name = "chatty"

    def __init__(self, start: str = "", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start]

    def parse(self, response):
        self.logger.debug("chatty debug line")
        self.logger.info("chatty info line")
        self.logger.warning("chatty warning line")
        self.logger.error("chatty error line")
        logging.getLogger("demo.other").critical("chatty critical line")
        print("chatty printed to stdout")  # lands in stderr, never in the protocol
        yield {"url": response.url, "status": response.status}
