"""A Scrapy crawl keeps every page's items whatever Redis does meanwhile: SIGKILLed and back
empty at page 2, down from the last page through the terminal transition, flapping there as the
chaos suite makes it, or back just as the crawl finishes (issue 21: a completed job was reported
one page short)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests

from testing.helpers import OwnRedis, Stack, wait_for
from testing.sites.server import SiteServer, sku_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAGES = 4
CATALOG = {
    "engine": "scrapy",
    "selectors": {"sku": "./@data-sku", "title": "h2.product-title::text"},
    # the chaos suite's job: `li.next a`, no ::attr(href)
    "config": {
        "item_selector": "div.product",
        "follow_links": True,
        "link_selector": "li.next a",
        "max_pages": PAGES,
    },
}


@pytest.fixture(scope="module")
def own(mongo_url, tmp_path_factory) -> Iterator[tuple[Stack, OwnRedis]]:
    workdir = tmp_path_factory.mktemp("outage_items")
    broker = OwnRedis(workdir / "redis")
    stack = Stack(broker.url, mongo_url, f"outage_items_{uuid.uuid4().hex[:8]}", workdir)
    try:
        stack.start(api=True, queues=("scrapy",))
        yield stack, broker
    finally:
        stack.stop()
        broker.stop()


def _flap(broker: OwnRedis, until: Callable[[], bool]) -> int:
    """What bench/chaos.py does during an outage: kill Redis again each time it comes back
    (here: restarted on its own files at once, as the supervisor does), until `until()`."""
    kills = 0
    while not until():
        broker.kill()
        kills += 1
        broker.start(fresh=False)
    broker.kill()
    return kills


def _outage(stack: Stack, broker: OwnRedis, job_id: str, timing: str) -> None:
    database = stack.database()

    def job() -> dict:
        return database.jobs.find_one({"_id": job_id}) or {}

    def terminal() -> bool:
        return job().get("status") in ("completed", "failed", "cancelled")

    if timing == "page-2":
        # down while pages 2..4 are fetched and stored, back empty before the job ends
        broker.kill()
        wait_for(lambda: job().get("pages_crawled", 0) >= PAGES - 1, 60, message="page 3")
    elif timing == "last-page":
        # down from the last page's fetch through the terminal transition (the chaos outage)
        broker.kill()
        wait_for(terminal, 60, message="the job to end without Redis")
    elif timing == "last-page-flapping":
        killer = threading.Thread(target=_flap, args=(broker, terminal), daemon=True)
        killer.start()
        killer.join(90)
        assert not killer.is_alive(), "the job never ended while Redis flapped"
    elif timing == "terminal-transition":
        # back (empty) just as the last page is counted: the final flush, the terminal
        # transition and its events meet a Redis that has just come back
        broker.kill()
        wait_for(lambda: job().get("pages_crawled", 0) >= PAGES, 60, message="the last page")
    broker.start(fresh=True)


@pytest.mark.parametrize(
    ("trigger", "timing"),
    [
        ("/catalog/page/2", "page-2"),
        (f"/catalog/page/{PAGES}", "last-page"),
        (f"/catalog/page/{PAGES}", "last-page-flapping"),
        (f"/catalog/page/{PAGES}", "terminal-transition"),
    ],
)
def test_a_redis_outage_mid_crawl_loses_no_page_of_items(own, trigger, timing):
    stack, broker = own
    headers = stack.register()
    with SiteServer(pages=PAGES, items_per_page=10, delay=0.4) as site:
        job = stack.submit(headers, url=site.url_for("/catalog/"), **CATALOG)
        wait_for(lambda: trigger in site.requests, 60, message=f"the crawl to fetch {trigger}")
        _outage(stack, broker, job["id"], timing)
        done = stack.wait_job(job["id"], headers, timeout=90)
    logs = requests.get(stack.url(f"/jobs/{job['id']}/logs"), headers=headers, timeout=10).json()
    said = [f"{line['level']} {line['message']}" for line in logs["logs"]]
    answer = requests.get(
        stack.url(f"/results/{job['id']}?limit=1000"), headers=headers, timeout=10
    )
    assert answer.status_code == 200, answer.text
    skus = [item["data"]["sku"] for item in answer.json()["results"]]
    expected = [sku_for(i) for i in range(1, PAGES * 10 + 1)]
    assert done["status"] == "completed", (done, said)
    assert sorted(skus) == expected, (sorted(set(expected) - set(skus)), said)
    assert done["pages_crawled"] == PAGES and done["items_scraped"] == len(skus) == 40, said
    assert done["items_failed"] == 0, said
