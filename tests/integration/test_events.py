"""Job events over SSE: order, resumption with Last-Event-ID, auth and ownership."""

from __future__ import annotations

import json

import pytest

from shared import events
from shared.events import EventLog
from testing.helpers import register_user

pytestmark = pytest.mark.integration


def parse_sse(text: str) -> list[dict]:
    """The events of an SSE body (comments and retry lines skipped)."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "data" in fields:
            event = json.loads(fields["data"])
            assert fields["id"] == event["id"] and fields["event"] == event["type"]
            found.append(event)
    return found


@pytest.fixture
def job(client, auth, app):
    made = client.post("/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=auth)
    job = made.get_json()
    owner = client.get("/api/v1/auth/me", headers=auth).get_json()["id"]
    log = EventLog.from_settings(app.config["SETTINGS"])
    log.append(job["id"], owner, events.STARTED, {"status": "running", "attempt": 1})
    for step in (1, 2, 3):
        log.append(job["id"], owner, events.PROGRESS, {"status": "running", "items_scraped": step})
    log.append(job["id"], owner, events.COMPLETED, {"status": "completed", "items_scraped": 3})
    return job


def test_a_jobs_stream_replays_its_events_in_order_and_ends_after_the_terminal_one(
    client, auth, job
):
    answer = client.get(f"/api/v1/jobs/{job['id']}/events", headers=auth)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    got = parse_sse(answer.get_data(as_text=True))
    assert [e["type"] for e in got] == ["job.started"] + ["job.progress"] * 3 + ["job.completed"]
    assert [e["data"].get("items_scraped") for e in got[1:]] == [1, 2, 3, 3]
    assert all(e["job_id"] == job["id"] and e["timestamp"].endswith("Z") for e in got)


def test_resuming_with_last_event_id_gives_exactly_the_rest(client, auth, job):
    everything = parse_sse(
        client.get(f"/api/v1/jobs/{job['id']}/events", headers=auth).get_data(as_text=True)
    )
    second = everything[1]["id"]
    resumed = client.get(
        f"/api/v1/jobs/{job['id']}/events", headers={**auth, "Last-Event-ID": second}
    )
    assert [e["id"] for e in parse_sse(resumed.get_data(as_text=True))] == [
        e["id"] for e in everything[2:]
    ]
    by_query = client.get(f"/api/v1/jobs/{job['id']}/events?last_event_id={second}", headers=auth)
    assert len(parse_sse(by_query.get_data(as_text=True))) == 3


def test_token_in_the_query_works_and_bad_tokens_and_other_users_do_not(client, auth, job):
    token = auth["Authorization"].split()[1]
    ok = client.get(f"/api/v1/jobs/{job['id']}/events?token={token}")
    assert ok.status_code == 200 and len(parse_sse(ok.get_data(as_text=True))) == 5
    bad = client.get(f"/api/v1/jobs/{job['id']}/events?token=not-a-token")
    assert bad.status_code == 401 and bad.get_json()["type"] == "unauthorized"
    assert client.get(f"/api/v1/jobs/{job['id']}/events").status_code == 401
    other = register_user(client)
    foreign = client.get(f"/api/v1/jobs/{job['id']}/events", headers=other)
    assert foreign.status_code == 404 and foreign.get_json()["type"] == "not_found"
    assert client.get("/api/v1/jobs/nope/events", headers=auth).status_code == 404
    garbled = client.get(
        f"/api/v1/jobs/{job['id']}/events", headers={**auth, "Last-Event-ID": "x; DROP"}
    )
    assert garbled.status_code == 422


def test_a_finished_job_whose_events_expired_still_ends_with_its_terminal_event(client, auth, db):
    job = client.post("/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=auth)
    job_id = job.get_json()["id"]
    db.jobs.update_one(
        {"_id": job_id},
        {"$set": {"status": "failed", "error": {"type": "timeout", "message": "t"}}},
    )
    got = parse_sse(
        client.get(f"/api/v1/jobs/{job_id}/events", headers=auth).get_data(as_text=True)
    )
    assert [e["type"] for e in got] == ["job.failed"]
    assert got[0]["data"]["error"]["type"] == "timeout"


def test_cancelling_a_pending_job_ends_its_stream(client, auth):
    job = client.post("/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=auth).get_json()
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=auth).status_code == 200
    got = parse_sse(
        client.get(f"/api/v1/jobs/{job['id']}/events", headers=auth).get_data(as_text=True)
    )
    assert [e["type"] for e in got] == ["job.cancelled"]
    assert got[0]["data"]["status"] == "cancelled"


def test_the_callers_stream_opens_at_its_position_so_a_cut_before_any_event_loses_nothing(
    client, auth, job, app
):
    owner = client.get("/api/v1/auth/me", headers=auth).get_json()["id"]
    last = EventLog.from_settings(app.config["SETTINGS"]).last_id(events.user_stream(owner))
    answer = client.get("/api/v1/events", headers=auth, buffered=False)
    try:
        opening = next(iter(answer.response))
        opening = opening.decode() if isinstance(opening, bytes) else opening
    finally:
        answer.close()
    assert opening == f"retry: 2000\nid: {last}\n\n"
