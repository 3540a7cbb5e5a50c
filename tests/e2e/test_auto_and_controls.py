"""`auto` measured on script-built pages and learned per site, visible empty results, crawl
controls, page content output and readable errors: real workers (scrapy + playwright), real
Chromium, local sites. One stack for the module."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from testing.helpers import Stack, closed_port
from testing.sites.kinds import ARTICLES, CHARSET_TITLE, PRICE, QUOTES_PER_PAGE, expected_quotes
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser]
ADMIN = {"ADMIN_USERNAME": "root", "ADMIN_PASSWORD": f"admin-{uuid.uuid4().hex}"}
QUOTES = {"text": "span.text::text", "author": "small.author::text"}
FOLLOW = {"item_selector": "div.quote", "follow_links": True, "link_selector": "li.next a"}
SCRIPTED = ("inline", "delayed", "template", "framework")


@pytest.fixture(scope="module")
def stack(redis_url, mongo_url, tmp_path_factory):
    s = Stack(redis_url, mongo_url, f"auto_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("a"))
    try:
        s.start(api=True, queues=("scrapy", "playwright"), **ADMIN)
        s.headers = s.register()
        yield s
    finally:
        s.stop()


def run(stack: Stack, timeout: float = 90, **spec) -> dict:
    job = stack.submit(stack.headers, **spec)
    return stack.wait_job(job["id"], stack.headers, timeout=timeout)


def items(stack: Stack, job: dict) -> list[dict]:
    page = requests.get(
        stack.url(f"/results/{job['id']}"),
        headers=stack.headers,
        params={"limit": 1000},
        timeout=10,
    ).json()
    return [r["data"] for r in page["results"]]


def logs(stack: Stack, job: dict) -> list[str]:
    answer = requests.get(
        stack.url(f"/jobs/{job['id']}/logs"), headers=stack.headers, timeout=10
    ).json()
    return [f"{line['level']} {line['message']}" for line in answer["logs"]]


def by_text(found: list[dict]) -> list[dict]:
    """Quotes in order; a <template>'s own empty quote (both engines see it) comes first."""
    return sorted(found, key=lambda q: int(q["text"].rsplit(" ", 1)[1]) if q["text"] else 0)


def filled(found: list[dict]) -> list[dict]:
    return [q for q in by_text(found) if any(q.values())]


def quotes_job(site: SiteServer, kind: str, engine: str) -> dict:
    config = dict(FOLLOW)
    if kind == "delayed":  # content that appears 300 ms after load, with no request to wait on
        config["wait_for"] = "div.quote"
    return {
        "url": f"{site.url}/kinds/{kind}/",
        "engine": engine,
        "selectors": QUOTES,
        "config": config,
    }


def test_auto_finds_what_playwright_finds_on_every_kind_of_script_built_page(stack):
    sites = {kind: SiteServer().start() for kind in SCRIPTED}  # one host each: separate memory
    try:
        submitted = {
            (kind, engine): stack.submit(stack.headers, **quotes_job(site, kind, engine))["id"]
            for kind, site in sites.items()
            for engine in ("auto", "playwright")
        }
        done = {
            key: stack.wait_job(job_id, stack.headers, timeout=120)
            for key, job_id in submitted.items()
        }
    finally:
        for site in sites.values():
            site.stop()
    for kind in SCRIPTED:
        auto, browser = done[(kind, "auto")], done[(kind, "playwright")]
        assert auto["status"] == browser["status"] == "completed", (kind, auto, browser)
        assert by_text(items(stack, auto)) == by_text(items(stack, browser))
        assert filled(items(stack, auto)) == expected_quotes()
        assert auto["engine_used"] == "playwright" and auto["pages_crawled"] == 3
        assert auto["auto_decision"] == {
            "engine": "playwright",
            "reason": f"static: 0 items; rendered: {QUOTES_PER_PAGE} → playwright",
            "static_items": 0,
            "rendered_items": QUOTES_PER_PAGE,
            "learned": False,
            "site": auto["auto_decision"]["site"],
        }
        assert "INFO auto: static: 0 items; rendered: 10 → playwright" in logs(stack, auto)
        assert auto["warnings"] == []


def test_auto_keeps_a_static_site_on_scrapy_without_rendering(stack):
    with SiteServer() as site:
        done = run(stack, **quotes_job(site, "static", "auto"))
    assert (done["status"], done["engine_used"]) == ("completed", "scrapy")
    assert by_text(items(stack, done)) == expected_quotes()
    assert done["auto_decision"]["engine"] == "scrapy"
    assert done["auto_decision"]["reason"] == "static: 10 items on the first page → scrapy"
    lines = logs(stack, done)
    assert not any("started on playwright" in line for line in lines)


def test_auto_renders_when_the_job_asks_for_scrolling(stack):
    with SiteServer() as site:
        spec = {"url": f"{site.url}/js/feed", "selectors": {"post": "article.post h3::text"}}
        auto = run(stack, **spec, engine="auto", config={"scroll": 8})
        browser = run(stack, **spec, engine="playwright", config={"scroll": 8})
    assert items(stack, auto) == items(stack, browser) and len(items(stack, auto)[0]["post"]) == 50
    assert auto["engine_used"] == "playwright"
    assert (
        auto["auto_decision"]["reason"]
        == "static: 1 item, 10 values; rendered: 1 item, 50 values → playwright"
    )


def test_the_learned_site_goes_straight_to_playwright_and_is_measured_again_when_empty(stack):
    with SiteServer() as site:
        first = run(stack, **quotes_job(site, "inline", "auto"))
        assert first["engine_used"] == "playwright" and not first["auto_decision"]["learned"]
        second = run(stack, **quotes_job(site, "inline", "auto"))
        assert (second["status"], second["items_scraped"]) == ("completed", 30)
        assert second["auto_decision"]["learned"] is True
        assert second["auto_decision"]["reason"].startswith(
            f"learned for 127.0.0.1:{site.port}/kinds/*: static: 0 items; rendered: 10"
        )
        lines = logs(stack, second)
        assert not any("started on scrapy" in line for line in lines), lines
        assert not any("rendering it to compare" in line for line in lines)

        admin = login_admin(stack)
        sites = requests.get(stack.url("/monitoring/auto"), headers=admin, timeout=10).json()
        mine = [s for s in sites["sites"] if s["site"] == f"127.0.0.1:{site.port}/kinds/*"]
        assert mine and mine[0]["engine"] == "playwright" and mine[0]["uses"] >= 1
        assert requests.get(stack.url("/monitoring/auto"), headers=stack.headers).status_code == 403

        # the site changed: the remembered engine finds nothing, so the next job measures again
        changed = quotes_job(site, "inline", "auto")
        changed["config"] = {**changed["config"], "item_selector": "div.gone"}
        empty = run(stack, **changed)
        assert empty["items_scraped"] == 0 and any("measured again" in w for w in empty["warnings"])
        third = run(stack, **quotes_job(site, "inline", "auto"))
        assert third["auto_decision"]["learned"] is False
        assert any("rendering it to compare" in line for line in logs(stack, third))


def login_admin(stack: Stack) -> dict:
    answer = requests.post(
        stack.url("/auth/login"),
        json={"username": "root", "password": ADMIN["ADMIN_PASSWORD"]},
        timeout=10,
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.mark.parametrize("engine", ["scrapy", "auto"])
def test_a_job_that_finds_nothing_says_so(stack, engine):
    with SiteServer() as site:
        nothing = run(
            stack,
            url=f"{site.url}/kinds/static/",
            engine=engine,
            selectors={"price": "span.price::text"},
            config={"item_selector": "div.quote"},
        )
        json_page = run(stack, url=f"{site.url}/kinds/json", engine=engine, selectors=QUOTES)
        deep = run(
            stack,
            url=f"{site.url}/kinds/deep",
            engine=engine,
            selectors=QUOTES,
            config={"item_selector": "div.quote"},
        )
    assert nothing["status"] == "completed"  # ten quotes, none with a price
    pages = nothing["pages_crawled"]
    assert nothing["warnings"][0] == f"selectors matched nothing on {pages} page(s)"
    assert f"WARNING selectors matched nothing on {pages} page(s)" in logs(stack, nothing)
    assert json_page["status"] == "completed" and "JSON" in json_page["warnings"][0]
    assert any("is JSON" in line for line in logs(stack, json_page))
    assert deep["status"] == "completed" and "2048 levels" in deep["warnings"][0]


@pytest.mark.parametrize("engine", ["scrapy", "playwright"])
def test_both_engines_read_robots_txt_alike(stack, engine):
    # the longest rule wins (Protego, as Google's parser): a first-match parser such as
    # urllib.robotparser would refuse the allowed page
    with SiteServer(disallow=["/kinds/"], allow=["/kinds/static/"]) as site:
        allowed = run(stack, url=f"{site.url}/kinds/static/", engine=engine, selectors=QUOTES)
        refused = run(stack, url=f"{site.url}/kinds/inline/", engine=engine, selectors=QUOTES)
    assert allowed["status"] == "completed" and allowed["items_scraped"] == 1
    assert refused["status"] == "failed" and refused["error"]["type"] == "robots_forbidden"


def articles(site: SiteServer, engine: str = "scrapy", **config) -> dict:
    return {
        "url": f"{site.url}/kinds/article/1",
        "engine": engine,
        "config": {"follow_links": True, **config},
    }


def fetched(site: SiteServer, prefix: str) -> list[str]:
    return [p for p in site.requests if p.startswith(prefix)]


@pytest.mark.parametrize("engine", ["scrapy", "playwright"])
def test_crawl_controls_patterns_domains_and_canonical_urls(stack, engine):
    with SiteServer() as site:
        done = run(stack, **articles(site, engine, include_patterns=["/kinds/article/*"]))
        # nav links carry ?utm_source=nav#top: each article is still fetched once, without them
        assert sorted(fetched(site, "/kinds/article/")) == [
            f"/kinds/article/{k}" for k in range(1, ARTICLES + 1)
        ]
        assert not fetched(site, "/kinds/about") and done["items_scraped"] == ARTICLES
        site.reset_requests()
        excluded = run(
            stack, **articles(site, engine, exclude_patterns=["*/article/3", "/kinds/ab*"])
        )
        assert sorted(fetched(site, "/kinds/")) == [
            "/kinds/article/1",
            "/kinds/article/2",
            "/kinds/article/4",
        ]
        assert excluded["pages_crawled"] == 3
        site.reset_requests()
        run(stack, **articles(site, engine, allowed_domains=["example.com"]))
        assert fetched(site, "/kinds/") == ["/kinds/article/1"]


@pytest.mark.parametrize("engine", ["scrapy", "playwright"])
def test_a_sitemap_index_starts_the_crawl_and_pages_come_out_as_markdown_text_and_html(
    stack, engine
):
    with SiteServer() as site:
        done = run(
            stack,
            url=f"{site.url}/kinds/sitemap-index.xml",
            engine=engine,
            config={
                "sitemap": True,
                "include_patterns": ["/kinds/article/*"],
                "output": ["markdown", "text", "html"],
            },
        )
    assert done["status"] == "completed", done
    found = sorted(items(stack, done), key=lambda i: i["title"])
    assert [i["title"] for i in found] == [f"Article {k}" for k in range(1, ARTICLES + 1)]
    first = found[0]
    assert (
        first["markdown"].startswith("# Article 1 heading")
        and "**web scraping**" in first["markdown"]
    )
    assert "Copyright" not in first["markdown"] and "Article 3" not in first["text"]
    assert "<p>" in first["html"] and "**" not in first["text"]
    export = requests.get(
        stack.url(f"/results/{done['id']}/export"),
        params={"format": "jsonl"},
        headers=stack.headers,
        timeout=10,
    )
    rows = [json.loads(line)["data"] for line in export.text.splitlines()]
    assert len(rows) == ARTICLES and all(r["markdown"] for r in rows)
    csv = requests.get(
        stack.url(f"/results/{done['id']}/export"),
        params={"format": "csv"},
        headers=stack.headers,
        timeout=10,
    )
    assert csv.text.splitlines()[0].startswith("title,markdown,text,html,")


def test_crawl_controls_are_validated(stack):
    bad = {
        "include_patterns": ["a b"],
        "allowed_domains": ["http://x.example/"],
        "output": ["mp3"],
        "sitemap": "yes please",
    }
    answer = requests.post(
        stack.url("/jobs"),
        json={"url": "http://127.0.0.1:9/", "config": bad},
        headers=stack.headers,
        timeout=10,
    )
    assert answer.status_code == 422
    assert set(answer.json()["errors"]) == {
        "config.include_patterns.0",
        "config.allowed_domains.0",
        "config.output",
        "config.sitemap",
    }
    both = requests.post(
        stack.url("/jobs"),
        json={"url": "http://127.0.0.1:9/", "config": {"output": "markdown", "item_selector": "p"}},
        headers=stack.headers,
        timeout=10,
    )
    assert both.status_code == 422 and "item_selector" in json.dumps(both.json()["errors"])


def sentence(message: str) -> bool:
    return (
        message[:1].isupper()
        and message.endswith(".")
        and not any(raw in message for raw in ("<", "Failure", "twisted", "Error:", "net::"))
    )


@pytest.mark.parametrize("engine", ["scrapy", "playwright"])
def test_failures_read_as_sentences_with_the_detail_in_the_log(stack, engine):
    with SiteServer(slow_seconds=20) as site, closed_port() as refusing:
        refused = run(stack, url=f"http://127.0.0.1:{refusing}/", engine=engine)
        dropped = run(stack, url=f"{site.url}/kinds/drop", engine=engine)
        slow = run(stack, url=f"{site.url}/slow", engine=engine, config={"timeout_seconds": 2})
    assert refused["error"]["type"] == "connection_refused"
    assert dropped["error"]["type"] == "connection_lost"
    assert slow["error"]["type"] == "timeout"
    for job in (refused, dropped, slow):
        assert job["status"] == "failed" and sentence(job["error"]["message"]), job["error"]
    assert any("[" in line and line.startswith("ERROR") for line in logs(stack, dropped))


@pytest.mark.parametrize("engine", ["scrapy", "playwright", "auto"])
def test_a_json_api_is_crawled_with_jmespath_selectors_keeping_the_values_types(stack, engine):
    with SiteServer(pages=3) as site:
        job = run(
            stack,
            url=f"{site.url}/api/catalog?page=1",
            engine=engine,
            selectors={
                "sku": "jmespath:sku",
                "title": "jmespath:title",
                "stock": "jmespath:stock",
                "raw": "jmespath:@",
            },
            config={
                "item_selector": "jmespath:items[*]",
                "follow_links": True,
                "link_selector": "jmespath:next",
            },
        )
        expected = [item for page in (1, 2, 3) for item in site.catalog_payload(page)["items"]]
    assert job["status"] == "completed" and job["pages_crawled"] == 3, job
    assert not job.get("warnings")
    found = items(stack, job)
    assert [i["sku"] for i in found] == [e["sku"] for e in expected]
    assert [i["raw"] for i in found] == expected  # a whole object, as the API gave it
    assert [i["stock"] for i in found] == [e["stock"] for e in expected]  # null stays null


def test_a_page_without_a_charset_gives_one_text_whichever_engine_reads_it(stack):
    # UTF-8 bytes, and no charset in the header or the page: Chromium alone would read â‚¬
    with SiteServer() as site:
        url = f"{site.url}/kinds/charset/unlabelled"
        fields = {"price": "span.price::text", "title": "title::text"}
        jobs = {
            (engine, kind): stack.submit(stack.headers, url=url, engine=engine, **spec)["id"]
            for engine in ("scrapy", "playwright", "auto")
            for kind, spec in (
                ("fields", {"selectors": fields}),
                ("content", {"config": {"output": ["markdown", "text"]}}),
            )
        }
        done = {key: stack.wait_job(job, stack.headers, timeout=90) for key, job in jobs.items()}
    found = {key: items(stack, job) for key, job in done.items()}
    assert found[("scrapy", "fields")] == [{"price": PRICE, "title": CHARSET_TITLE}]
    assert found[("scrapy", "content")][0]["markdown"].startswith("# Crème brûlée at the café")
    for engine in ("playwright", "auto"):
        for kind in ("fields", "content"):
            assert found[(engine, kind)] == found[("scrapy", kind)], (engine, kind)
