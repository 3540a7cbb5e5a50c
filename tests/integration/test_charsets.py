"""One text for one page: the static engine (Scrapy) and the browser engine (a real Chromium) read
the same bytes as the same characters, whatever the page declares or leaves out (local pages
under /kinds/charset/)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from scrapers.playwright_engine import PlaywrightEngine
from scrapers.scrapy_engine import ScrapyEngine
from shared.jobspec import JobSpec, resolve_config
from shared.settings import Settings
from testing.sites.kinds import CHARSET_CASES, CHARSET_TITLE, PRICE
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.browser]

SETTINGS = Settings()
HTML_CASES = [case for case, (kind, _) in CHARSET_CASES.items() if kind.startswith("text/html")]
FIELDS = {"title": "title::text", "heading": "h1::text", "price": "span.price::text"}

if not os.access(SETTINGS.chromium_path, os.X_OK):
    pytest.skip(f"no Chromium at {SETTINGS.chromium_path}", allow_module_level=True)


class Sink:
    """Items by the page they came from."""

    should_stop = False

    def __init__(self) -> None:
        self.by_page: dict[str, list[dict[str, Any]]] = {}
        self.logs: list[str] = []

    def page(self, url: str, status: int) -> None:
        pass

    def items(self, page_url: str, found: list[dict[str, Any]]) -> None:
        self.by_page.setdefault(page_url, []).extend(found)

    def log(self, level: str, message: str) -> None:
        self.logs.append(f"{level} {message}")


@pytest.fixture(scope="module")
def site():
    with SiteServer() as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    engine = PlaywrightEngine(SETTINGS)
    yield engine
    engine.close()


def crawl(engine: Any, site: SiteServer, **job: Any) -> dict[str, list[dict[str, Any]]]:
    """Every /kinds/charset/ page in one job of `engine`: its items by case."""
    urls = [site.url_for(f"/kinds/charset/{case}") for case in CHARSET_CASES]
    config = resolve_config({"obey_robots": False, "max_pages": len(urls), **job.pop("config")})
    spec = JobSpec("charset", urls, job.pop("selectors", {}), config, user_agent="Test")
    sink = Sink()
    result = engine.run(spec, sink)
    assert result.error is None and result.pages == len(urls), (result, sink.logs)
    return {url.rsplit("/", 1)[1]: found for url, found in sink.by_page.items()}


@pytest.fixture(scope="module")
def fields(site, browser):
    """The FIELDS of every page, by engine."""
    return {
        "scrapy": crawl(ScrapyEngine(), site, selectors=FIELDS, config={}),
        "playwright": crawl(browser, site, selectors=FIELDS, config={}),
    }


@pytest.fixture(scope="module")
def content(site, browser):
    """Every page's main content (`config.output`), by engine."""
    config = {"output": ["markdown", "text"]}
    return {
        "scrapy": crawl(ScrapyEngine(), site, config=config),
        "playwright": crawl(browser, site, config=config),
    }


@pytest.mark.parametrize("case", HTML_CASES)
def test_both_engines_give_the_same_fields_read_right(fields, case):
    expected = [{"title": CHARSET_TITLE, "heading": "Crème brûlée at the café", "price": PRICE}]
    assert fields["scrapy"][case] == expected
    assert fields["playwright"][case] == expected


@pytest.mark.parametrize("case", list(CHARSET_CASES))
def test_both_engines_give_the_same_markdown_and_text(content, case):
    scrapy, browser = content["scrapy"][case], content["playwright"][case]
    assert scrapy == browser
    assert len(browser) == 1 and f"costs {PRICE} today" in browser[0]["markdown"]
    assert "crème brûlée" in browser[0]["text"] and "â" not in browser[0]["text"]


@pytest.mark.parametrize("engine", ["scrapy", "playwright"])
def test_a_redirect_to_an_unlabelled_page_is_followed_and_read_alike(site, browser, engine):
    target = "/kinds/charset/unlabelled"
    spec = JobSpec(
        "redirect",
        [site.url_for(f"/redirect?to={target}")],
        {"price": "span.price::text"},
        resolve_config({"obey_robots": False}),
        user_agent="Test",
    )
    sink = Sink()
    result = (browser if engine == "playwright" else ScrapyEngine()).run(spec, sink)
    assert result.error is None, sink.logs
    assert sink.by_page == {site.url_for(target): [{"price": PRICE}]}


def test_an_unlabelled_page_over_max_page_bytes_is_refused_unread(site, browser):
    spec = JobSpec(
        "large",
        [site.url_for("/kinds/charset/unlabelled")],
        {"price": "span.price::text"},
        resolve_config({"obey_robots": False}),
        user_agent="Test",
    )
    spec = dataclasses.replace(spec, max_page_bytes=300)  # the page is 476 bytes
    sink = Sink()
    result = browser.run(spec, sink)
    assert result.error is not None and result.error["type"] == "page_too_large", result
    assert sink.by_page == {}
