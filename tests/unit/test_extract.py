"""Extraction: a selector means the same on every engine, and yields str, list or None."""

from __future__ import annotations

import pytest

from scrapers.extract import extract_items, extract_links, field_value, parse

PAGE = """<html><head><title> Shop </title></head><body>
<h1 class="page-title">Catalog</h1>
<div class="product" data-sku="A1"><h2>Alpha</h2><span class="price">$1</span>
  <ul><li>x</li><li>y</li></ul><a href="/item/1">d</a></div>
<div class="product" data-sku="B2"><h2>Beta</h2><ul><li>z</li></ul></div>
<ul class="pager"><li class="next"><a href="/page/2#top">next</a></li></ul>
<a href="https://other.example/x">ext</a> <a href="mailto:a@b.c">mail</a>
<a href="/about">about</a> <a href="/about">again</a>
</body></html>"""
URL = "http://127.0.0.1:8080/page/1"


@pytest.fixture
def page():
    return parse(PAGE, URL)


def test_css_text_of_one_match_is_a_string(page):
    assert field_value(page, "h1.page-title::text") == "Catalog"


def test_several_matches_give_a_list_and_none_gives_null(page):
    assert field_value(page, "h2::text") == ["Alpha", "Beta"]
    assert field_value(page, "p.missing::text") is None


def test_attr_and_xpath_selectors(page):
    assert field_value(page, "div.product::attr(data-sku)") == ["A1", "B2"]
    assert field_value(page, "//h1/text()") == "Catalog"
    assert field_value(page, "(//h2/text())[2]") == "Beta"


def test_item_selector_makes_one_item_per_container_with_relative_fields(page):
    items = extract_items(
        page,
        {"sku": "./@data-sku", "name": "h2::text", "price": "span.price::text", "tags": "li::text"},
        item_selector="div.product",
    )
    assert items == [
        {"sku": "A1", "name": "Alpha", "price": "$1", "tags": ["x", "y"]},
        {"sku": "B2", "name": "Beta", "price": None, "tags": "z"},
    ]


def test_page_level_item_and_default_title(page):
    assert extract_items(page, {"heading": "h1::text"}) == [{"heading": "Catalog"}]
    assert extract_items(page, {}) == [{"title": "Shop"}]
    assert extract_items(page, {"nothing": "p.none::text"}) == []


def test_link_selector_picks_links_and_drops_fragments(page):
    assert extract_links(page, URL, "li.next a::attr(href)") == ["http://127.0.0.1:8080/page/2"]
    assert extract_links(page, URL, "li.next a") == ["http://127.0.0.1:8080/page/2"]


def test_default_links_are_same_site_http_only_without_duplicates(page):
    assert extract_links(page, URL) == [
        "http://127.0.0.1:8080/item/1",
        "http://127.0.0.1:8080/page/2",
        "http://127.0.0.1:8080/about",
    ]


def test_a_page_that_would_explode_into_items_is_capped_in_count_and_bytes():
    from scrapers.extract import Budget

    body = "<p class='x'>" + "y" * 24_000 + "</p>" + "<div class='i'>k</div>" * 5_000
    page = parse(f"<html><body>{body}</body></html>", "http://example.test/")
    budget = Budget(max_items=1_000, max_field_bytes=1_000, max_total_bytes=200_000)
    # an absolute XPath inside the item selector copies the whole page into every item
    items = extract_items(page, {"all": "//body", "k": "./text()"}, "div.i", budget)
    assert len(items) <= 1_000
    assert all(len(item["all"] or "") <= 1_000 for item in items)
    assert sum(len(item["all"] or "") + len(item["k"] or "") for item in items) <= 201_000
    assert any("MAX_ITEMS_PER_PAGE" in note for note in budget.notes)
    assert any("MAX_FIELD_BYTES" in note for note in budget.notes)


def test_a_budget_that_is_not_reached_changes_nothing():
    from scrapers.extract import Budget

    page = parse("<ul><li>a</li><li>b</li></ul>", "http://example.test/")
    budget = Budget(max_items=10, max_field_bytes=100, max_total_bytes=1_000)
    assert extract_items(page, {"v": "li::text"}, None, budget) == [{"v": ["a", "b"]}]
    assert not budget.notes
