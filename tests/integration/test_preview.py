"""POST /jobs/preview: a job body's selectors on its first page, run by a real worker's engine,
with the validation, target policy and limits of jobs; no worker answers 503."""

from __future__ import annotations

import pytest

from testing.helpers import Stack, register_user
from testing.sites.server import SiteServer, sku_for

pytestmark = pytest.mark.integration

CATALOG = {
    "selectors": {"sku": "./@data-sku", "title": "h2.product-title::text"},
    "config": {"item_selector": "div.product", "follow_links": True, "link_selector": "li.next a"},
}


@pytest.fixture(scope="module")
def worker(redis_url, mongo_url, tmp_path_factory):
    """A real scrapy worker (at most 3 items per preview, pages up to 100 kB) on its own Redis
    database."""
    stack = Stack(redis_url, mongo_url, "preview_tests", tmp_path_factory.mktemp("preview"))
    try:
        stack.start(api=False, queues=("scrapy",), PREVIEW_MAX_ITEMS="3", MAX_PAGE_BYTES="100000")
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def catalog():
    with SiteServer(pages=3, items_per_page=10) as server:
        yield server


@pytest.fixture
def served(settings, worker):
    """The API in-process, on the worker's broker and database."""
    from api.app import create_app

    app = create_app(settings.with_(redis_url=worker.redis_url, mongo_db=worker.db_name))
    client = app.test_client()
    return client, register_user(client)


def preview(client, headers, **body):
    return client.post("/api/v1/jobs/preview", json=body, headers=headers)


@pytest.mark.slow
def test_preview_shows_the_first_pages_items_and_stores_nothing(served, catalog, worker):
    client, headers = served
    answer = preview(client, headers, url=catalog.url_for("/catalog/"), engine="scrapy", **CATALOG)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["status_code"] == 200
    assert body["title"] == "Catalog page 1"
    assert body["engine"] == "scrapy"
    assert body["count"] == 10  # one page only, links not followed
    assert body["items"] == [
        {"sku": sku_for(i), "title": f"Product {i}"} for i in (1, 2, 3)
    ]  # PREVIEW_MAX_ITEMS=3
    assert body["truncated"] is True
    assert body["error"] is None
    assert client.get("/api/v1/jobs", headers=headers).get_json() == []
    assert worker.database().results.count_documents({}) == 0


@pytest.mark.slow
def test_preview_of_a_page_that_fails_says_why(served, catalog):
    client, headers = served
    missing = preview(client, headers, url=catalog.url_for("/status/404"), engine="scrapy")
    assert missing.status_code == 200
    assert missing.get_json()["status_code"] == 404
    assert missing.get_json()["error"]["type"] == "http_error"
    assert missing.get_json()["count"] == 0


@pytest.mark.slow
def test_a_page_over_max_page_bytes_is_dropped_by_the_static_engine_too(served):
    client, headers = served
    with SiteServer(pages=1, items_per_page=600) as big:  # about 150 kB
        answer = preview(client, headers, url=big.url_for("/catalog/"), engine="scrapy")
    assert answer.get_json()["error"]["type"] == "page_too_large"
    assert "MAX_PAGE_BYTES=100000" in answer.get_json()["error"]["message"]
    assert answer.get_json()["count"] == 0


def test_preview_validates_its_body_as_a_job(client, auth):
    cases = [
        ({}, "url"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "http://example.com/", "selectors": {"x": "div[["}}, "selectors.x"),
        ({"url": "http://example.com/", "config": {"max_pages": 0}}, "config.max_pages"),
        ({"url": "http://example.com/", "engine": "curl"}, "engine"),
        ({"url": "http://example.com/", "config": {"headers": {"Host": "x"}}}, "config.headers"),
    ]
    for body, field in cases:
        answer = client.post("/api/v1/jobs/preview", json=body, headers=auth)
        assert answer.status_code == 422, body
        assert answer.get_json()["type"] == "validation_error"
        assert field in answer.get_json()["errors"], (body, answer.get_json())
    assert client.post("/api/v1/jobs/preview", json={"url": "http://example.com/"}).status_code == (
        401
    )


def test_preview_of_a_blocked_target_is_refused(settings):
    from api.app import create_app

    client = create_app(settings.with_(private_targets="block")).test_client()
    headers = register_user(client)
    for url in ("http://127.0.0.1:8080/", "http://169.254.169.254/latest/", "http://0x7f.1/"):
        answer = client.post("/api/v1/jobs/preview", json={"url": url}, headers=headers)
        assert answer.status_code == 422, url
        assert "Blocked target" in answer.get_json()["errors"]["url"][0]


def test_preview_without_a_worker_answers_503(settings):
    from api.app import create_app

    # no worker consumes this Redis database
    client = create_app(settings.with_(preview_pickup_seconds=0.5)).test_client()
    headers = register_user(client)
    answer = client.post(
        "/api/v1/jobs/preview", json={"url": "http://example.com/"}, headers=headers
    )
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["type"] == "unavailable"
    assert "No scrapy worker took the preview" in body["detail"]
    assert answer.headers["Retry-After"] == "5"
    playwright = client.post(
        "/api/v1/jobs/preview",
        json={"url": "http://example.com/", "engine": "playwright"},
        headers=headers,
    )
    assert "No playwright worker" in playwright.get_json()["detail"]


@pytest.mark.slow
def test_preview_sends_the_cookies_a_user_has_sealed_through_the_queue(served, catalog):
    from testing.sites import members

    client, headers = served
    cookie = {"name": members.GATE_COOKIE, "value": catalog.members.gate_value}
    answer = preview(
        client,
        headers,
        url=catalog.url_for("/members/gated"),
        engine="scrapy",
        selectors={"name": "::text"},
        config={"item_selector": "li.item", "cookies": [cookie]},
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["count"] == 3
    assert catalog.members.gate_value not in answer.get_data(as_text=True)
