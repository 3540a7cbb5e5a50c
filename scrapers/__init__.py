"""Crawl engines (Scrapy, Playwright), selector extraction, auto-detection and proxies."""
