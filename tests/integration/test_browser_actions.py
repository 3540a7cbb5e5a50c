"""Browser actions, next_click pagination and scrolling that waits, in the Playwright engine
against the local /act/ pages in a real Chromium."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from scrapers.playwright_engine import PlaywrightEngine
from shared.settings import Settings
from testing.sites import interactive
from testing.sites.server import SiteServer
from tests.integration.test_playwright_engine import FakeSink, make_spec

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SETTINGS = Settings()
ITEM = {"id": "./@data-id", "title": "./text()"}

if not os.access(SETTINGS.chromium_path, os.X_OK):
    pytest.skip(f"no Chromium at {SETTINGS.chromium_path}", allow_module_level=True)


@pytest.fixture(scope="module")
def site():
    with SiteServer(pages=1) as server:
        yield server


@pytest.fixture(scope="module")
def engine():
    engine = PlaywrightEngine(SETTINGS.with_(action_timeout_seconds=5.0))
    yield engine
    engine.close()


class FileSink(FakeSink):
    """Also keeps the files the engine stores (screenshot steps)."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, str, str, bytes]] = []

    def file(self, page_url: str, kind: str, content_type: str, data: bytes) -> bool:
        self.files.append((page_url, kind, content_type, data))
        return True


def run(engine: PlaywrightEngine, url: str, selectors: dict[str, str], **config: Any):
    sink = FileSink()
    spec = make_spec([url], selectors, obey_robots=False, **config)
    return engine.run(spec, sink), sink


def test_next_click_extracts_each_page_once_until_the_button_is_gone(engine, site):
    result, sink = run(
        engine,
        site.url_for("/act/list?delay=300"),
        ITEM,
        item_selector="li.item",
        next_click="button#next",
        wait_for="li.item",
    )
    assert result.error is None, result
    ids = [int(item["id"]) for item in sink.found]
    assert ids == list(range(1, interactive.LIST_PAGES * interactive.LIST_PER_PAGE + 1))
    assert result.pages == interactive.LIST_PAGES
    assert result.warnings == []
    assert any("no control on page 5" in message for _, message in sink.logs)
    # items are kept per page URL: each clicked page has its own
    start = site.url_for("/act/list?delay=300")
    assert [url for url, _ in sink.pages] == [start] + [f"{start}#click={n}" for n in range(2, 6)]


def test_next_click_stops_at_max_pages(engine, site):
    result, sink = run(
        engine,
        site.url_for("/act/list?delay=50"),
        ITEM,
        item_selector="li.item",
        next_click="button#next",
        wait_for="li.item",
        max_pages=2,
    )
    assert result.pages == 2 and len(sink.found) == 20
    assert len({item["id"] for item in sink.found}) == 20


@pytest.mark.parametrize(
    "query, extra",
    [
        pytest.param("stuck=1", {}, id="a-click-that-changes-nothing"),
        # a page that breaks its own timers still ends the wait after such a click
        pytest.param(
            "stuck=1",
            {
                "actions": [{"type": "evaluate", "script": "window.setTimeout = () => 0"}],
                "timeout_seconds": 30,
            },
            id="a-page-that-breaks-its-timers",
        ),
        # the DOM changes after the click (emptied, filled again) but ends as it was
        pytest.param("same=1", {}, id="a-click-that-renders-the-same-page-again"),
    ],
)
def test_a_click_that_leaves_the_page_as_it_was_stops_with_a_warning_and_no_duplicates(
    engine, site, query, extra
):
    result, sink = run(
        engine,
        site.url_for(f"/act/list?{query}"),
        ITEM,
        item_selector="li.item",
        next_click="button#next",
        wait_for="li.item",
        **extra,
    )
    assert result.error is None, result
    assert result.pages == 1 and len(sink.found) == interactive.LIST_PER_PAGE
    assert any("did not change the page" in w for w in result.warnings), result.warnings


def test_next_click_reads_a_page_rendered_in_two_steps_once_it_is_whole(engine, site):
    # each click empties the list, then a timer fills it 50 ms later, with no request between:
    # the first change is not the page to read (no wait_for: nothing else waits for the items)
    result, sink = run(
        engine,
        site.url_for("/act/list?split=50"),
        ITEM,
        item_selector="li.item",
        next_click="button#next",
    )
    assert result.error is None, result
    ids = [int(item["id"]) for item in sink.found]
    assert ids == list(range(1, interactive.LIST_PAGES * interactive.LIST_PER_PAGE + 1))
    assert result.pages == interactive.LIST_PAGES and result.warnings == []


def test_next_click_follows_a_control_that_navigates(engine, site):
    # page 1's button goes to page 2 (another /act/jump), whose button goes to page 3
    start = site.url_for("/act/jump?to=/act/jump%3Fto%3D/act/list")
    result, sink = run(
        engine, start, {"title": "h1::text"}, next_click="button#go, button#next", max_pages=3
    )
    assert result.error is None, result
    assert [url for url, _ in sink.pages] == [
        start,
        site.url_for("/act/jump?to=/act/list"),
        site.url_for("/act/list"),
    ]
    assert [item["title"] for item in sink.found] == ["Jump", "Jump", "List"]


def test_search_form_fill_select_press_and_wait(engine, site):
    result, sink = run(
        engine,
        site.url_for("/act/search?delay=400"),
        {"text": "./text()"},
        item_selector="div.result",
        actions=[
            {"type": "fill", "selector": "input[name=q]", "value": "shoes"},
            {"type": "select", "selector": "select#sort", "value": "desc"},
            {"type": "press", "selector": "input[name=q]", "key": "Enter"},
            {"type": "wait", "selector": "div.result"},
            {"type": "screenshot", "full_page": True},
        ],
    )
    assert result.error is None, result
    assert [item["text"] for item in sink.found] == interactive.search_results("shoes", "desc")
    [(url, kind, content_type, png)] = sink.files
    assert (url, kind, content_type) == (
        site.url_for("/act/search?delay=400"),
        "screenshot",
        "image/png",
    )
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


def test_a_failing_step_fails_the_job_naming_the_step(engine, site):
    started = time.monotonic()
    result, sink = run(
        engine,
        site.url_for("/act/search"),
        {"text": "./text()"},
        item_selector="div.result",
        actions=[
            {"type": "fill", "selector": "input[name=q]", "value": "x"},
            {"type": "wait", "milliseconds": 10},
            {"type": "click", "selector": "button.accept", "timeout_seconds": 2},
        ],
    )
    assert result.error is not None and result.error["type"] == "action_failed", result
    assert result.error["message"].startswith("step 3 (click button.accept): no element after 2 s")
    assert sink.found == []
    assert time.monotonic() - started < 30


def test_a_script_that_never_returns_is_bounded_by_the_step_timeout(engine, site):
    result, _ = run(
        engine,
        site.url_for("/act/search"),
        {"text": "./text()"},
        actions=[
            {"type": "evaluate", "script": "new Promise(() => {})", "timeout_seconds": 1},
        ],
    )
    assert result.error is not None and result.error["type"] == "action_failed"
    assert "step 1 (evaluate new Promise(() => {}))" in result.error["message"]
    assert "did not finish after 1 s" in result.error["message"]


def test_evaluate_and_click_actions_change_what_is_extracted(engine, site):
    # the script clicks the list's button (page 2); the click step goes to page 3
    result, sink = run(
        engine,
        site.url_for("/act/list?delay=100"),
        ITEM,
        item_selector="li.item",
        actions=[
            {"type": "wait", "selector": "li.item"},
            {"type": "evaluate", "script": "document.querySelector('#next').click()"},
            {"type": "wait", "selector": "li.item[data-id='11']"},
            {"type": "click", "selector": "#next"},
            {"type": "wait", "selector": "li.item[data-id='21']"},
        ],
    )
    assert result.error is None, result
    assert [int(item["id"]) for item in sink.found] == list(range(21, 31))


def test_scroll_waits_for_a_slow_api_and_says_when_the_page_stopped_growing(engine, site):
    # each batch takes 700 ms to arrive; a scroll while it is on its way is ignored by the
    # page: scrolling that does not wait loses every batch after the first
    result, sink = run(
        engine,
        site.url_for("/act/feed?delay=700"),
        {"title": "h3::text"},
        item_selector="article.post",
        scroll=8,
    )
    assert result.error is None, result
    titles = [item["title"] for item in sink.found]
    assert titles == [f"Post {k}" for k in range(1, interactive.FEED_TOTAL + 1)]
    assert any("stopped growing after 4 of 8 scrolls" in w for w in result.warnings), result


def test_the_scroll_action_waits_too(engine, site):
    result, sink = run(
        engine,
        site.url_for("/act/feed?delay=500"),
        {"title": "h3::text"},
        item_selector="article.post",
        actions=[{"type": "scroll", "times": 2}],
    )
    assert result.error is None, result
    assert len(sink.found) == 30
