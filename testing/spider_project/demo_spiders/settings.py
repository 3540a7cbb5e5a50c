"""The project's settings, as `scrapy startproject` leaves them (trimmed)."""

BOT_NAME = "demo_spiders"
SPIDER_MODULES = ["demo_spiders.spiders"]
NEWSPIDER_MODULE = "demo_spiders.spiders"
ROBOTSTXT_OBEY = False
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
FEED_EXPORT_ENCODING = "utf-8"
