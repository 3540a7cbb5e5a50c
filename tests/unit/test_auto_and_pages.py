"""`auto`'s verdicts, page reading (JSON, deep DOMs, content output), crawl rules and error
sentences: pure logic on saved pages, no services."""

from __future__ import annotations

import dataclasses
import gzip
import json

import pytest

from scrapers import failures
from scrapers.auto import rendered_verdict, static_verdict
from scrapers.crawl_rules import LinkRules, Seen, canonical, clean_url, read_sitemap
from scrapers.pages import PageProblems, read_page
from shared.auto_memory import site_of
from shared.jobspec import JobSpec, domain_problem, pattern_problem, resolve_config

QUOTES = {"text": "span.text::text", "author": "small.author::text"}


def spec(selectors=None, **config) -> JobSpec:
    return JobSpec("j", ["http://s/"], selectors or {}, resolve_config(config))


def quotes_page(n: int, script: str = "") -> str:
    quotes = "".join(
        f'<div class="quote"><span class="text">Q{k}</span><small class="author">A{k}</small></div>'
        for k in range(n)
    )
    tag = f"<script>{script}</script>" if script else ""
    return f"<html><head><title>Quotes</title></head><body>{quotes}{tag}</body></html>"


def test_static_page_with_items_stays_on_scrapy():
    outcome = read_page(spec(QUOTES, item_selector="div.quote"), quotes_page(3), "http://s/")
    render, why = static_verdict(outcome, "http://s/")
    assert not render and why == "static: 3 items on the first page → scrapy"


def test_an_empty_page_with_scripts_is_rendered_to_compare_and_one_without_is_not():
    job = spec(QUOTES, item_selector="div.quote")
    scripted = read_page(job, quotes_page(0, "document.write('x')"), "http://s/")
    assert static_verdict(scripted, "http://s/") == (
        True,
        "static: 0 items; the page has scripts: rendering it to compare",
    )
    plain = read_page(job, quotes_page(0), "http://s/")
    assert static_verdict(plain, "http://s/")[0] is False


def test_a_selector_that_matched_nothing_also_asks_for_a_render():
    page = quotes_page(2, "fill()").replace('<small class="author">A0</small>', "")
    page = page.replace('<small class="author">A1</small>', "")
    outcome = read_page(spec(QUOTES, item_selector="div.quote"), page, "http://s/")
    render, why = static_verdict(outcome, "http://s/")
    assert render and "nothing for author" in why


def test_browser_only_options_ask_for_a_render_on_a_page_with_scripts():
    job = spec({"post": "article h3::text"}, item_selector="article", scroll=5)
    feed = "<html><body><article><h3>Post 1</h3></article><script>more()</script></body></html>"
    render, why = static_verdict(read_page(job, feed, "http://s/"), "http://s/", ["scroll"])
    assert render and "asks for scroll" in why


def test_the_browser_wins_only_with_more():
    static = {"items": 0, "values": 0}
    assert rendered_verdict(static, {"items": 10, "values": 20}) == (
        "playwright",
        "static: 0 items; rendered: 10 → playwright",
    )
    assert rendered_verdict(static, {"items": 0, "values": 0})[0] == "scrapy"
    more_values = rendered_verdict({"items": 2, "values": 2}, {"items": 2, "values": 4})
    assert more_values[0] == "playwright" and "4 values" in more_values[1]


def test_json_pages_are_refused_with_a_reason_not_an_exception():
    outcome = read_page(spec(QUOTES), '{"a": 1}', "http://s/api", "application/json")
    assert outcome.items == [] and outcome.problem == "json"
    assert "JSON" in outcome.notes[0]
    problems = PageProblems()
    problems.add(outcome)
    assert "JSON" in problems.warnings(spec(QUOTES), pages_ok=1)[0]


API = {"items": [{"sku": "A", "price": 1.5, "tags": ["new"], "o": {"k": 1}}, {"sku": "B"}]}
JSON_FIELDS = {"sku": "jmespath:sku", "price": "jmespath:price", "tags": "jmespath:tags"}


def test_json_pages_are_read_with_jmespath_selectors_keeping_the_values_types():
    job = spec(JSON_FIELDS, item_selector="jmespath:items[*]")
    outcome = read_page(job, json.dumps(API), "http://s/api", "application/json")
    assert outcome.problem is None and outcome.notes == []
    assert outcome.items == [
        {"sku": "A", "price": 1.5, "tags": ["new"]},  # a one-element list stays a list
        {"sku": "B", "price": None, "tags": None},
    ]
    # a browser shows the document inside a page of its own: the same items
    shown = f"<html><body><pre>{json.dumps(API)}</pre></body></html>"
    assert read_page(job, shown, "http://s/api", "application/json").items == outcome.items
    # one item per page without item_selector; CSS fields give nothing on JSON
    for content_type in ("text/json", "application/vnd.api+json; charset=utf-8"):
        whole = read_page(
            spec({"n": "jmespath:length(items)", "t": "h1::text"}),
            json.dumps(API),
            "u",
            content_type,
        )
        assert whole.items == [{"n": 2, "t": None}]


def test_a_json_page_that_does_not_parse_or_a_huge_value_says_so():
    job = spec(JSON_FIELDS, item_selector="jmespath:items[*]")
    broken = read_page(job, "{not json", "http://s/api", "application/json")
    assert broken.problem == "extract_error" and "does not parse" in broken.notes[0]
    huge = {"items": [{"sku": "x" * 200_000, "tags": ["y" * 1000] * 200}]}
    capped = read_page(job, json.dumps(huge), "http://s/api", "application/json")
    limit = job.max_field_bytes
    # text is cut as an HTML field's is; a list or an object goes whole or not at all
    assert capped.items == [{"sku": "x" * limit, "price": None, "tags": None}]
    assert any("MAX_FIELD_BYTES" in note for note in capped.notes)


def test_jmespath_fields_give_nothing_on_html_pages():
    html = "<html><body><h1>Hi</h1></body></html>"
    outcome = read_page(spec({"h": "h1::text", "j": "jmespath:a"}), html, "http://s/")
    assert outcome.items == [{"h": "Hi", "j": None}]


def test_a_dom_too_deep_to_parse_says_so():
    deep = "<html><body>" + "<div>" * 5000 + '<span class="text">deep</span>' + "</div>" * 5000
    outcome = read_page(spec(QUOTES, item_selector="div.quote"), deep, "http://s/")
    assert outcome.problem == "deep_dom" and "2048" in outcome.notes[0]


@pytest.mark.timeout(10)  # reading a page is linear: pathological pages stay fast
def test_reading_pathological_pages_is_linear():
    for page in ("<div " * 200_000, "<script></script>" * 40_000, "<noscript>" * 100_000):
        read_page(spec(QUOTES, item_selector="div.quote"), page, "http://s/")


def test_items_without_values_and_fields_that_never_matched_are_warnings():
    job = spec({**QUOTES, "price": "span.price::text"}, item_selector="div.quote")
    empty, full = PageProblems(), PageProblems()
    empty.add(read_page(job, quotes_page(0), "http://s/"))
    assert empty.warnings(job, pages_ok=1) == ["selectors matched nothing on 1 page(s)"]
    full.add(read_page(job, quotes_page(3), "http://s/"))
    assert full.warnings(job, pages_ok=1) == ["the selectors of price matched nothing on 1 page(s)"]


ARTICLE = (
    "<html><head><title>Article</title></head><body><nav><a href='/'>Home</a></nav>"
    "<main><h1>The heading</h1><p>A long first paragraph about <b>scraping</b> that has "
    "enough words in it to count as the main content of this page.</p><p>Second paragraph "
    "with <a href='/more'>a link</a> and still more words to read.</p></main>"
    "<footer>Copyright footer</footer></body></html>"
)


def test_content_output_gives_one_item_per_page_in_each_format():
    job = spec(output=["markdown", "text", "html"])
    (item,) = read_page(job, ARTICLE, "http://s/a").items
    assert item["title"] == "Article"
    assert item["markdown"].startswith("# The heading") and "**scraping**" in item["markdown"]
    assert "[a link](http://s/more)" in item["markdown"]
    assert "Copyright" not in item["markdown"] and "Home" not in item["text"]
    assert "<b>" not in item["text"] and "scraping" in item["text"]
    assert "<p>" in item["html"] and "<nav" not in item["html"]


def test_content_output_is_capped_by_max_page_bytes():
    job = dataclasses.replace(spec(output=["text", "markdown"]), max_page_bytes=40)
    outcome = read_page(job, ARTICLE, "http://s/a")
    assert len(outcome.items[0]["text"]) == 20 and any("cut" in n for n in outcome.notes)


def test_canonical_urls_drop_fragments_tracking_and_order():
    assert clean_url("http://s/p?utm_source=x&id=3#top") == "http://s/p?id=3"
    assert canonical("HTTP://S:80/p?b=2&a=1&fbclid=z#x") == canonical("http://s/p?a=1&b=2")
    seen = Seen()
    assert seen.add("http://s/p?id=1#a") and not seen.add("http://s/p?id=1&utm_medium=m")


def test_link_rules_include_exclude_and_domains():
    rules = LinkRules(
        {
            "include_patterns": ["/catalog/*"],
            "exclude_patterns": ["*/page/3"],
            "allowed_domains": ["shop.example"],
        }
    )
    assert rules.allows("http://www.shop.example/catalog/page/2")
    assert rules.why_not("http://shop.example/catalog/page/3") == "exclude_patterns"
    assert rules.why_not("http://shop.example/about") == "include_patterns"
    assert rules.why_not("http://evil.example/catalog/") == "allowed_domains"
    assert LinkRules({"include_patterns": ["http://a.example/x*"]}).allows("http://a.example/x1")


def test_sitemaps_and_sitemap_indexes_are_read_gzipped_or_not():
    urlset = (
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>http://s/1</loc></url><url><loc> http://s/2 </loc></url></urlset>"
    )
    assert read_sitemap(urlset, "u", 10_000) == (["http://s/1", "http://s/2"], [])
    index = (
        b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<sitemap><loc>http://s/a.xml</loc></sitemap></sitemapindex>"
    )
    assert read_sitemap(gzip.compress(index), "u", 10_000) == ([], ["http://s/a.xml"])
    with pytest.raises(ValueError, match="not a sitemap"):
        read_sitemap(b"<html><body>hi</body></html>", "http://s/x", 10_000)


def test_pattern_and_domain_rules():
    assert pattern_problem("/blog/*") is None and pattern_problem("a b")
    assert domain_problem("shop.example") is None
    assert domain_problem("http://shop.example/") and domain_problem("a..b")


def test_sites_are_a_host_and_the_first_path_segment():
    assert site_of("http://127.0.0.1:8080/js/catalog/page/2") == ("127.0.0.1:8080", "/js/*")
    assert site_of("https://Shop.example/") == ("shop.example", "/*")
    assert site_of("https://shop.example/about") == ("shop.example", "/*")


def test_failures_read_as_sentences():
    for kind in ("connection_refused", "timeout", "connection_lost", "dns_error"):
        message = failures.problem(kind, "http://s/")["message"]
        assert message[0].isupper() and message.endswith(".") and "http://s/" in message
        assert "<" not in message and "Failure" not in message
    assert failures.http_problem(404, "http://s/x")["message"] == (
        "The server answered HTTP 404 Not Found for http://s/x."
    )
    assert failures.chromium_kind("net::ERR_EMPTY_RESPONSE at http://s/") == "connection_lost"
