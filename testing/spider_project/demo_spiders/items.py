"""The project's items, as `scrapy startproject` puts them: `scrapy.Item` classes with fields."""

import scrapy


class ProductItem(scrapy.Item):
    """A product of the demo catalog."""

    sku = scrapy.Field()
    title = scrapy.Field()
    price = scrapy.Field()
    tag = scrapy.Field()


class MemberItem(scrapy.Item):
    """An entry of the members area, and whether only a logged-in member sees it."""

    page = scrapy.Field()
    name = scrapy.Field()
    members_only = scrapy.Field()
