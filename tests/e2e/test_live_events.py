"""Live events from real workers over SSE: progress that only moves forward, an exact resume,
and exactly one terminal event even when the worker dies mid-job."""

from __future__ import annotations

import json
import os
import signal
import uuid

import pytest
import requests

from testing.helpers import Stack, wait_for
from testing.helpers import catalog_crawl as crawl
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def live(redis_url, mongo_url, tmp_path_factory):
    stack = Stack(redis_url, mongo_url, f"ev_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("ev"))
    try:
        stack.start(api=True, queues=("scrapy",), JOB_STALE_SECONDS="3", ITEM_BATCH_SIZE="500")
        yield stack
    finally:
        stack.stop()


def read_events(stack: Stack, job_id: str, headers: dict, last_id: str | None = None) -> list:
    """Read the job's SSE stream to its end, as a client would."""
    extra = {"Last-Event-ID": last_id} if last_id else {}
    found, fields = [], {}
    with requests.get(
        stack.url(f"/jobs/{job_id}/events"), headers={**headers, **extra}, stream=True, timeout=90
    ) as answer:
        assert answer.status_code == 200
        for line in answer.iter_lines(decode_unicode=True):
            if line == "":
                if "data" in fields:
                    found.append(json.loads(fields["data"]))
                fields = {}
            elif not line.startswith(":") and ": " in line:
                key, value = line.split(": ", 1)
                fields[key] = value
    return found


def test_a_client_reads_a_job_to_its_end_and_resumes_exactly(live):
    headers = live.register()
    with SiteServer(pages=5, delay=0.4) as site:
        job = live.submit(headers, **crawl(site))
        got = read_events(live, job["id"], headers)
    types = [e["type"] for e in got]
    assert types[0] == "job.started" and types[-1] == "job.completed"
    assert types.count("job.completed") == 1
    progress = [e["data"] for e in got if e["type"] == "job.progress"]
    items = [p["items_scraped"] for p in progress]
    pages = [p["pages_crawled"] for p in progress]
    assert items == sorted(items) and pages == sorted(pages)  # never backwards
    assert any(0 < n < 50 for n in items)  # items move with the work, not only at the end
    assert got[-1]["data"]["items_scraped"] == 50 and got[-1]["data"]["pages_crawled"] == 5
    early = got[1]["id"]
    again = read_events(live, job["id"], headers, last_id=early)
    assert [e["id"] for e in again] == [e["id"] for e in got[2:]]


def test_a_worker_killed_mid_job_still_ends_the_stream_with_one_terminal_event(live):
    headers = live.register()
    with SiteServer(pages=8, delay=0.5) as site:
        job = live.submit(headers, **crawl(site))
        wait_for(lambda: live.job(job["id"], headers)["pages_crawled"] >= 2, 30)
        for pid in live.children("worker-scrapy"):
            os.kill(pid, signal.SIGKILL)
        got = read_events(live, job["id"], headers)
    terminal = [e for e in got if e["type"] in ("job.completed", "job.failed", "job.cancelled")]
    assert [e["type"] for e in terminal] == ["job.completed"] and got[-1] is terminal[0]
    assert terminal[0]["data"]["items_scraped"] == 80
    assert [e["type"] for e in got].count("job.started") == 2  # the killed run, the take-over


def test_the_callers_stream_carries_its_own_jobs_only(live):
    alice, bob = live.register(), live.register()
    seen: list[dict] = []
    with requests.get(live.url("/events"), headers=alice, stream=True, timeout=60) as answer:
        assert answer.status_code == 200
        with SiteServer(pages=1) as site:
            mine = live.submit(alice, **crawl(site))
            theirs = live.submit(bob, **crawl(site))
            fields: dict = {}
            for line in answer.iter_lines(decode_unicode=True):
                if line == "" and "data" in fields:
                    seen.append(json.loads(fields["data"]))
                    fields = {}
                    if seen[-1]["type"] == "job.completed":
                        break
                elif line and not line.startswith(":") and ": " in line:
                    key, value = line.split(": ", 1)
                    fields[key] = value
            live.wait_job(theirs["id"], bob)
    assert {e["job_id"] for e in seen} == {mine["id"]}


def test_a_websocket_client_sees_its_own_jobs_events_and_none_of_another_users(live):
    from simple_websocket import Client

    alice, bob = live.register(), live.register()
    token = alice["Authorization"].split()[1]
    ws_url = live.url("/ws").replace("http://", "ws://") + f"?token={token}"
    ws = Client.connect(ws_url)
    try:
        with SiteServer(pages=1) as site:
            theirs = live.submit(bob, **crawl(site))
            mine = live.submit(alice, **crawl(site))
            seen = []
            while not seen or seen[-1]["type"] != "job.completed":
                frame = ws.receive(timeout=30)
                assert frame is not None, "no event within 30 s"
                seen.append(json.loads(frame))
            live.wait_job(theirs["id"], bob)
    finally:
        ws.close()
    assert {e["job_id"] for e in seen} == {mine["id"]}
    assert seen[0]["type"] == "job.started"
    bad = requests.get(live.url("/ws") + "?token=forged", timeout=10)
    assert bad.status_code == 401 and bad.json()["type"] == "unauthorized"
    # the token a browser must put in the URL never reaches the access log
    log = live.logs["api"]
    wait_for(lambda: "/api/v1/ws?token=[redacted]" in log.read_text(), 10, message="logged")
    text = log.read_text()
    assert token not in text and "token=forged" not in text


def test_an_eleventh_websocket_of_one_user_is_refused(live):
    from simple_websocket import Client, ConnectionError

    headers = live.register()
    token = headers["Authorization"].split()[1]
    ws_url = live.url("/ws").replace("http://", "ws://") + f"?token={token}"
    open_ones = [Client.connect(ws_url) for _ in range(10)]
    try:
        with pytest.raises(ConnectionError) as refused:
            Client.connect(ws_url)
        assert refused.value.status_code == 429  # before the upgrade, as SSE is refused
        plain = requests.get(live.url("/ws") + f"?token={token}", timeout=10)
        assert plain.status_code == 429 and plain.json()["type"] == "rate_limited"
    finally:
        for ws in open_ones:
            ws.close()


def wait_running(stack: Stack, job_id: str, headers: dict) -> None:
    wait_for(lambda: stack.job(job_id, headers)["status"] == "running", 30, message="job running")


def test_after_reset_the_stream_is_the_new_runs_and_resuming_still_reads_everything(live):
    headers = live.register()
    with SiteServer(pages=5, delay=0.2) as site:
        job = live.submit(headers, **crawl(site))
        first = read_events(live, job["id"], headers)
        assert first[-1]["type"] == "job.completed" and first[-1]["data"]["run"] == 1
        answer = requests.post(live.url(f"/jobs/{job['id']}/reset"), headers=headers, timeout=10)
        assert answer.status_code == 200 and answer.json()["run"] == 2, answer.text
        # opened while the new run is pending: it waits for that run's end, not the old one's
        second = read_events(live, job["id"], headers)
    assert second[0]["type"] == "job.started" and second[-1]["type"] == "job.completed"
    assert {e["data"].get("run") for e in second if e["type"] != "job.log"} == {2}
    assert second[-1]["data"]["items_scraped"] == 50
    assert not {e["id"] for e in first} & {e["id"] for e in second}
    # Last-Event-ID keeps its meaning: exactly what came after, across runs (to the next end)
    resumed = read_events(live, job["id"], headers, last_id=first[1]["id"])
    assert [e["id"] for e in resumed] == [e["id"] for e in first[2:]]
    after_end = read_events(live, job["id"], headers, last_id=first[-1]["id"])
    assert [e["id"] for e in after_end][-len(second) :] == [e["id"] for e in second]
    assert "job.completed" not in [e["type"] for e in after_end[: -len(second)]]


def test_after_retry_the_stream_waits_for_the_retried_runs_end(live):
    headers = live.register()
    with SiteServer(pages=6, delay=0.4) as site:
        job = live.submit(headers, **crawl(site))
        wait_running(live, job["id"], headers)
        cancel = requests.post(live.url(f"/jobs/{job['id']}/cancel"), headers=headers, timeout=10)
        assert cancel.status_code == 200, cancel.text
        first = read_events(live, job["id"], headers)
        assert first[-1]["type"] == "job.cancelled"
        retry = requests.post(live.url(f"/jobs/{job['id']}/retry"), headers=headers, timeout=10)
        assert retry.status_code == 200 and retry.json()["run"] == 2, retry.text
        second = read_events(live, job["id"], headers)
    assert [e["type"] for e in second if e["type"] in ("job.cancelled", "job.completed")] == [
        "job.completed"
    ]
    assert second[-1]["data"]["run"] == 2 and second[-1]["data"]["items_scraped"] == 60
    assert live.job(job["id"], headers)["status"] == "completed"
