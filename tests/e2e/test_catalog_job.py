"""A user submits a catalog crawl over HTTP and gets the exact items, counters and exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests

from testing.helpers import closed_port, wait_for
from testing.sites.server import SiteServer, price_for, sku_for, stock_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SELECTORS = {
    "sku": "./@data-sku",
    "title": "h2.product-title::text",
    "price": "span.price::text",
    "stock": "p.stock::text",
    "tags": "ul.tags li::text",
}


def expected_items(count: int) -> list[dict]:
    return [
        {
            "sku": sku_for(i),
            "title": f"Product {i}",
            "price": price_for(i),
            "stock": stock_for(i),
            "tags": ["tag-a", "tag-b"],
        }
        for i in range(1, count + 1)
    ]


def catalog_job(site: SiteServer, **config) -> dict:
    return {
        "url": f"{site.url}/catalog/",
        "engine": "scrapy",
        "selectors": SELECTORS,
        "config": {
            "item_selector": "div.product",
            "follow_links": True,
            "link_selector": "li.next a::attr(href)",
            "max_pages": 20,
            **config,
        },
    }


def test_catalog_crawl_through_the_api_yields_exact_items_counters_and_exports(stack):
    headers = stack.register()
    with SiteServer(pages=5, items_per_page=10, delay=0.4) as site:
        site_url = site.url
        job = stack.submit(headers, **catalog_job(site))
        assert job["status"] == "pending"
        seen: list[dict] = []

        def finished() -> bool:
            current = stack.job(job["id"], headers)
            seen.append(current)
            return current["status"] in ("completed", "failed")

        wait_for(finished, 60, interval=0.05, message="job finished")
    done = seen[-1]
    assert done["status"] == "completed", done
    statuses = [s["status"] for s in seen]
    assert "running" in statuses and statuses.index("running") < len(statuses) - 1
    running_pages = [s["pages_crawled"] for s in seen if s["status"] == "running"]
    assert any(0 < p < 5 for p in running_pages), running_pages
    assert any(0 < s["progress"] < 100 for s in seen if s["status"] == "running")
    assert (done["pages_crawled"], done["items_scraped"], done["progress"]) == (5, 50, 100)
    assert done["engine_used"] == "scrapy" and done["error"] is None
    assert done["started_at"] and done["completed_at"] and done["duration_seconds"] > 0

    page = requests.get(
        stack.url(f"/results/{job['id']}"),
        headers=headers,
        params={"skip": 10, "limit": 5},
        timeout=10,
    ).json()
    assert page["total"] == 50 and page["skip"] == 10 and page["limit"] == 5
    assert [r["data"] for r in page["results"]] == expected_items(15)[10:15]
    assert page["results"][0]["url"] == f"{site_url}/catalog/page/2"
    assert page["results"][0]["scraped_at"].endswith("Z")

    exported = requests.get(
        stack.url(f"/results/{job['id']}/export"),
        headers=headers,
        params={"format": "csv"},
        timeout=10,
    )
    assert exported.status_code == 200
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["sku", "title", "price", "stock", "tags", "url", "scraped_at"]
    assert rows[1][:5] == ["SKU-00001", "Product 1", "$1.50", "", '["tag-a", "tag-b"]']
    assert rows[2][:4] == ["SKU-00002", "Product 2", "$3.00", "in stock"]
    assert len(rows) == 51

    lines = requests.get(
        stack.url(f"/results/{job['id']}/export"),
        headers=headers,
        params={"format": "jsonl"},
        timeout=10,
    ).text.splitlines()
    assert [json.loads(line)["data"] for line in lines] == expected_items(50)
    as_json = requests.get(
        stack.url(f"/results/{job['id']}/export"),
        headers=headers,
        params={"format": "json"},
        timeout=10,
    ).json()
    assert [row["data"] for row in as_json] == expected_items(50)


def test_another_users_job_and_results_answer_404(stack):
    owner, other = stack.register(), stack.register()
    with SiteServer(pages=1) as site:
        job = stack.submit(owner, url=f"{site.url}/catalog/", engine="scrapy")
        stack.wait_job(job["id"], owner)
    for path in (
        f"/jobs/{job['id']}",
        f"/results/{job['id']}",
        f"/results/{job['id']}/export?format=csv",
    ):
        answer = requests.get(stack.url(path), headers=other, timeout=10)
        assert answer.status_code == 404, path
        assert answer.json()["type"] == "not_found"
    assert (
        requests.delete(stack.url(f"/jobs/{job['id']}"), headers=other, timeout=10).status_code
        == 404
    )
    listed = requests.get(stack.url("/jobs"), headers=other, timeout=10)
    assert listed.json() == [] and listed.headers["X-Total-Count"] == "0"


def test_unreachable_site_fails_with_a_readable_error(stack):
    headers = stack.register()
    with closed_port() as refusing:
        job = stack.submit(headers, url=f"http://127.0.0.1:{refusing}/", engine="scrapy")
        done = stack.wait_job(job["id"], headers)
    assert done["status"] == "failed"
    assert done["error"]["type"] == "connection_refused"
    assert "refused" in done["error"]["message"]


def test_http_error_page_fails_the_job(stack):
    headers = stack.register()
    with SiteServer(pages=1) as site:
        url = f"{site.url}/status/404"
        job = stack.submit(headers, url=url, engine="scrapy")
        done = stack.wait_job(job["id"], headers)
    assert done["status"] == "failed"
    assert done["error"] == {
        "type": "http_error",
        "message": f"The server answered HTTP 404 Not Found for {url}.",
    }
