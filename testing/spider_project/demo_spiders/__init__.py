"""A small Scrapy project written for the tests of `engine: spider` (testing/spider_eggs.py)."""
