"""The Python client against real processes: lazy result pages, streamed exports, event
streams that survive a cut connection with nothing lost or repeated, token renewal, errors."""

from __future__ import annotations

import csv
import io
import itertools
import json
import uuid

import httpx
import pytest

from scrapemaster import Client, NotFound, Unauthorized, ValidationFailed
from testing.helpers import Stack, catalog_crawl
from testing.relay import Relay
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PASSWORD = "s3cret-pass"


@pytest.fixture(scope="module")
def stack(redis_url, mongo_url, tmp_path_factory):
    """The API and a scrapy worker; short SSE heartbeats, so the server soon lets go of the
    streams a test cut (and the client reads keep-alive comments)."""
    s = Stack(redis_url, mongo_url, f"cl_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("cl"))
    try:
        s.start(api=True, queues=("scrapy",), SSE_HEARTBEAT_SECONDS="1")
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def account(stack):
    """A registered user: (username, access token, refresh token)."""
    username = f"c{uuid.uuid4().hex[:10]}"
    with Client(stack.base) as anonymous:
        anonymous.register(username, f"{username}@example.test", PASSWORD)
        tokens = anonymous.login(username, PASSWORD)
    return username, tokens["access_token"], tokens["refresh_token"]


@pytest.fixture(scope="module")
def finished_job(stack, account):
    """A completed job of 5 pages, 50 items."""
    with SiteServer(pages=5) as site, Client(stack.base, token=account[1]) as client:
        job = client.jobs.submit(catalog_crawl(site))
        done = client.jobs.wait(job["id"])
    assert done["status"] == "completed" and done["items_scraped"] == 50
    return done


def counting_client(stack, token: str, seen: list[str]) -> Client:
    hooks = {"request": [lambda request: seen.append(request.url.path)]}
    return Client(stack.base, token=token, http=httpx.Client(event_hooks=hooks, timeout=30))


def test_results_iterate_across_pages_fetching_each_only_when_needed(stack, account, finished_job):
    seen: list[str] = []
    with counting_client(stack, account[1], seen) as client:
        items = client.results.iterate(finished_job["id"], page_size=7)
        first = list(itertools.islice(items, 7))
        assert len(seen) == 1  # lazy: one page so far
        rest = list(items)
    skus = [item["data"]["sku"] for item in first + rest]
    assert skus == [f"SKU-{n:05d}" for n in range(1, 51)]  # all of them, in order, once each
    assert len(seen) == 8  # ceil(50 / 7) pages, no extra request after the short last page


def test_export_streams_into_a_file_with_progress(stack, account, finished_job, tmp_path):
    calls: list[tuple[int, int | None]] = []
    target = tmp_path / "items.csv"
    with Client(stack.base, token=account[1]) as client:
        written = client.results.export(
            finished_job["id"],
            target,
            format="csv",
            chunk_size=512,
            progress=lambda done, total: calls.append((done, total)),
        )
        buffer = io.BytesIO()
        client.results.export(finished_job["id"], buffer, format="jsonl")
    rows = list(csv.DictReader(target.open()))
    assert [r["sku"] for r in rows] == [f"SKU-{n:05d}" for n in range(1, 51)]
    assert written == target.stat().st_size
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == written and len(calls) > 3  # chunk by chunk
    assert not list(tmp_path.glob("*.part"))
    lines = buffer.getvalue().decode().splitlines()
    assert len(lines) == 50 and json.loads(lines[0])["data"]["sku"] == "SKU-00001"


def test_job_events_survive_a_cut_connection_with_nothing_lost_or_repeated(stack, account):
    with (
        SiteServer(pages=6, delay=0.4) as site,
        Relay(stack.port) as relay,
        Client(stack.base, token=account[1]) as direct,
        Client(relay.url, token=account[1], reconnect_delay=0.2) as client,
    ):
        job = direct.jobs.submit(catalog_crawl(site))
        stream = client.events.job(job["id"])
        got = []
        for event in stream:
            got.append(event)
            if len(got) == 2:
                assert relay.cut() >= 2  # mid-job, while the server still writes to us
        full = list(direct.events.job(job["id"]))  # the whole stream, read in one go
    assert stream.reconnects >= 1 and relay.accepted >= 2
    ids = [e["id"] for e in got]
    assert len(ids) == len(set(ids))  # nothing repeated
    assert ids == [e["id"] for e in full]  # nothing lost
    assert got[-1]["type"] == "job.completed" and got[-1]["data"]["items_scraped"] == 60


def test_the_all_jobs_stream_resumes_after_a_cut_from_its_last_event(stack, account):
    with (
        SiteServer(pages=4, delay=0.4) as site,
        Relay(stack.port) as relay,
        Client(stack.base, token=account[1]) as direct,
        Client(relay.url, token=account[1], reconnect_delay=0.2) as client,
    ):
        stream = client.events.all()
        job = direct.jobs.submit(catalog_crawl(site))
        got = []
        for event in stream:
            got.append(event)
            if len(got) == 1:
                relay.cut()
            if event["type"] == "job.completed" and event["job_id"] == job["id"]:
                break
        stream.close()
        full = list(direct.events.job(job["id"]))
    mine = [e["id"] for e in got if e["job_id"] == job["id"]]
    assert stream.reconnects >= 1
    assert mine == [e["id"] for e in full]


def test_an_expired_access_token_is_renewed_with_the_refresh_token(stack, account):
    renewed: list[tuple[str, str | None]] = []
    with Client(
        stack.base,
        token="expired.or.forged",
        refresh_token=account[2],
        on_tokens=lambda access, refresh: renewed.append((access, refresh)),
    ) as client:
        assert client.me()["username"] == account[0]
        assert renewed and renewed[0][0] == client.access_token != "expired.or.forged"
    with Client(stack.base, username=account[0], password=PASSWORD) as client:
        assert client.jobs.stats()["total"] >= 0  # logs in on first use
    with Client(stack.base, token="expired.or.forged") as client, pytest.raises(Unauthorized):
        client.me()  # nothing to renew with


def test_errors_carry_the_apis_detail_type_fields_and_request_id(stack, account):
    with Client(stack.base, token=account[1]) as client:
        with pytest.raises(NotFound) as missing:
            client.jobs.get("no-such-job")
        with pytest.raises(ValidationFailed) as invalid:
            client.jobs.submit(url="http://127.0.0.1:1/", config={"max_pages": 0})
        with pytest.raises(NotFound):
            list(client.events.job("no-such-job"))
    assert missing.value.status == 404 and missing.value.type == "not_found"
    assert missing.value.detail and len(missing.value.request_id or "") >= 16
    assert invalid.value.status == 422 and "config.max_pages" in invalid.value.errors
    assert "config.max_pages" in invalid.value.describe()


def test_wait_after_retry_and_after_reset_waits_for_the_new_run(stack, account):
    """A "retry (or reset), wait, export" script exports the new run's data, not a part of it."""
    with SiteServer(pages=6, delay=0.3) as site, Client(stack.base, token=account[1]) as client:
        job = client.jobs.submit(catalog_crawl(site))
        for event in client.events.job(job["id"]):
            if event["type"] == "job.progress" and event["data"].get("pages_crawled", 0) >= 1:
                client.jobs.cancel(job["id"])  # the worker writes job.cancelled as it stops
                break
        assert client.jobs.wait(job["id"])["status"] == "cancelled"
        retried = client.jobs.retry(job["id"])
        assert retried["status"] == "pending" and retried["run"] == 2
        done = client.jobs.wait(job["id"])
        assert done["status"] == "completed" and done["items_scraped"] == 60, done
        assert client.jobs.reset(job["id"])["run"] == 3
        again = client.jobs.wait(job["id"])
    assert again["status"] == "completed" and again["items_scraped"] == 60, again
    assert again["completed_at"] > done["completed_at"]
