"""Scheduled runs end to end: API, scheduler process, scrapy worker and webhook worker against a
local page whose content the test changes between runs."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from shared.webhooks import verify
from testing.helpers import Stack, wait_for
from testing.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class Shop:
    """A one-page shop on loopback; `products` (sku -> price) is what it shows right now."""

    def __init__(self, products: dict[str, str]) -> None:
        self.products = dict(products)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                rows = "".join(
                    f'<li class="p"><b class="sku">{sku}</b><i class="price">{price}</i></li>'
                    for sku, price in outer.products.items()
                )
                body = f"<html><body><h1>Shop</h1><ul>{rows}</ul></body></html>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/shop"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sched_stack(redis_url, mongo_url, tmp_path_factory):
    stack = Stack(redis_url, mongo_url, f"sc_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("sc"))
    try:
        stack.start(api=True, queues=("scrapy",), SCHEDULER_TICK_SECONDS="0.2")
        stack.start_worker("webhooks", concurrency=2)
        stack.start_scheduler()
        yield stack
    finally:
        stack.stop()


def test_three_runs_count_exact_changes_and_job_changed_fires_only_when_items_changed(
    sched_stack,
):
    stack = sched_stack
    headers = stack.register()
    receiver = Receiver()
    shop = Shop({"A-1": "1.00", "B-2": "2.00", "C-3": "3.00"})
    try:
        hook = requests.post(
            stack.url("/webhooks"),
            json={"webhook_url": receiver.url, "events": ["job.changed", "job.completed"]},
            headers=headers,
            timeout=10,
        ).json()
        schedule = requests.post(
            stack.url("/schedules"),
            json={
                "name": "shop prices",
                "cron": "0 0 1 1 *",  # once a year: every run here is started by hand
                "key": "sku",
                "job": {
                    "url": shop.url,
                    "engine": "scrapy",
                    "selectors": {"sku": "b.sku::text", "price": "i.price::text"},
                    "config": {"item_selector": "li.p"},
                },
            },
            headers=headers,
            timeout=10,
        ).json()

        def run_once() -> dict:
            started = requests.post(
                stack.url(f"/schedules/{schedule['id']}/run"), headers=headers, timeout=10
            )
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]

            def settled() -> dict | None:
                page = requests.get(
                    stack.url(f"/schedules/history?schedule_id={schedule['id']}"),
                    headers=headers,
                    timeout=10,
                ).json()
                rows = [r for r in page["runs"] if r["id"] == run_id]
                return rows[0] if rows and rows[0]["status"] != "started" else None

            return wait_for(settled, 60, interval=0.2, message=f"run {run_id} settled")

        first = run_once()
        assert first["status"] == "completed" and first["items_scraped"] == 3
        assert first["changes"] is None  # the first run is the baseline

        shop.products = {"A-1": "1.00", "B-2": "2.50", "D-4": "4.00"}
        second = run_once()
        assert second["changes"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 1}
        listed = requests.get(
            stack.url(f"/schedules/{schedule['id']}/changes?run={second['id']}"),
            headers=headers,
            timeout=10,
        ).json()
        assert listed["compared_with"] == first["id"] and listed["total"] == 3
        assert {(c["kind"], c["key"]): (c["before"], c["after"]) for c in listed["changes"]} == {
            ("added", "D-4"): (None, {"sku": "D-4", "price": "4.00"}),
            ("removed", "C-3"): ({"sku": "C-3", "price": "3.00"}, None),
            ("changed", "B-2"): ({"sku": "B-2", "price": "2.00"}, {"sku": "B-2", "price": "2.50"}),
        }

        third = run_once()  # nothing changed on the page
        assert third["changes"] == {"added": 0, "removed": 0, "changed": 0, "unchanged": 3}

        def delivered() -> list | None:
            rows = requests.get(
                stack.url(f"/webhooks/{hook['id']}/deliveries"), headers=headers, timeout=10
            ).json()
            done = [r for r in rows if r["state"] == "delivered"]
            return rows if len(done) == 4 and len(done) == len(rows) else None

        wait_for(delivered, 30, message="three job.completed and one job.changed delivered")
        calls = [(sent, json.loads(body)) for sent, body in receiver.calls]
        changed = [payload for _, payload in calls if payload["event"] == "job.changed"]
        assert len(changed) == 1 and changed[0]["job_id"] == second["job_id"]
        assert changed[0]["changes"]["changed"] == 1 and changed[0]["run_id"] == second["id"]
        assert all(payload["schedule_id"] == schedule["id"] for _, payload in calls)
        for sent, body in receiver.calls:
            assert verify(hook["secret"], body, sent["X-ScrapeMaster-Signature"])
        job = stack.job(second["job_id"], headers)
        assert job["schedule_id"] == schedule["id"]
    finally:
        receiver.close()
        shop.close()
