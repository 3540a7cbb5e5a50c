"""Spiders of everyday projects: one that logs in with a form before it crawls, one whose
callback raises."""

from urllib.parse import urlsplit

import scrapy

from demo_spiders.items import MemberItem, ProductItem


class MembersSpider(scrapy.Spider):
    """Logs in to the demo site's members area (`start`: its login page) with
    `FormRequest.from_response` (the form's hidden CSRF token is posted back), then crawls the
    pages a member sees, yielding `MemberItem`s."""

    name = "members"

    def __init__(self, start: str = "", username: str = "", password: str = "", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start]
        self.username = username
        self.password = password

    def parse(self, response):
        yield scrapy.FormRequest.from_response(
            response,
            formdata={"username": self.username, "password": self.password},
            callback=self.logged_in,
        )

    def logged_in(self, response):
        if not response.css("a.logout"):
            self.logger.error("login failed: %s", response.css("p.error::text").get())
            return
        yield from self.entries(response)

    def entries(self, response):
        page = urlsplit(response.url).path
        for name in response.css("li.item::text").getall():
            yield MemberItem(page=page, name=name, members_only="members-only" in name)
        following = response.css("a.next::attr(href)").get()
        if following:
            yield response.follow(following, self.entries)


class BrokenSpider(scrapy.Spider):
    """Yields the first catalog page's products, then raises in the callback of the second."""

    name = "broken"

    def __init__(self, start: str = "", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start]

    def parse(self, response):
        for product in response.css("div.product"):
            yield ProductItem(sku=product.attrib.get("data-sku"), tag="before the error")
        following = response.css("li.next a::attr(href)").get()
        if following:
            yield response.follow(following, self.second)

    def second(self, response):
        raise ValueError(f"cannot parse {response.url}")
