"""One cap on a user's open event streams, SSE and WebSocket together, on a real API (gunicorn)
and Redis: 429 in the error shape beyond it, the slot given back when a client goes away, and
the slots of an API process that was killed expiring on their own."""

from __future__ import annotations

import signal
import uuid

import pytest
import redis
import requests

from testing.helpers import Stack, wait_for

pytestmark = [pytest.mark.e2e]

CAP = 3
JOB = {"url": "http://127.0.0.1:9/catalog/", "selectors": {"title": "h1::text"}}


@pytest.fixture(scope="module")
def api(redis_url, mongo_url, tmp_path_factory):
    stack = Stack(redis_url, mongo_url, f"sc_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("sc"))
    try:
        stack.start(api=True, queues=(), STREAMS_MAX_PER_USER=str(CAP), SSE_HEARTBEAT_SECONDS="0.5")
        yield stack
    finally:
        stack.stop()


def token_of(headers: dict) -> str:
    return headers["Authorization"].split()[1]


def open_sse(api: Stack, headers: dict, path: str = "/events") -> requests.Response:
    return requests.get(api.url(path), headers=headers, stream=True, timeout=30)


def assert_refused(answer: requests.Response) -> None:
    assert answer.status_code == 429, answer.text[:300]
    body = answer.json()
    assert body["type"] == "rate_limited" and "STREAMS_MAX_PER_USER" in body["detail"]
    assert body["request_id"] and answer.headers["Retry-After"]


def accepted(api: Stack, headers: dict) -> bool:
    """Whether one more stream is accepted now (closed again at once)."""
    answer = open_sse(api, headers)
    answer.close()
    return answer.status_code == 200


def test_sse_and_websocket_share_one_cap_per_user(api):
    from simple_websocket import Client, ConnectionError

    alice, bob = api.register(), api.register()
    job = requests.post(api.url("/jobs"), json=JOB, headers=alice, timeout=10).json()
    ws_url = api.url("/ws").replace("http://", "ws://") + f"?token={token_of(alice)}"
    ws = Client.connect(ws_url)
    streams = [open_sse(api, alice), open_sse(api, alice, f"/jobs/{job['id']}/events")]
    try:
        assert [s.status_code for s in streams] == [200, 200]
        assert_refused(open_sse(api, alice))
        assert_refused(open_sse(api, alice, f"/jobs/{job['id']}/events"))
        with pytest.raises(ConnectionError) as refused:
            Client.connect(ws_url)
        assert refused.value.status_code == 429
        assert accepted(api, bob)  # the cap is per user
    finally:
        ws.close()
        for stream in streams:
            stream.close()
    wait_for(lambda: accepted(api, alice), 10, message="slots back after closing")


def test_a_burst_of_streams_gets_the_cap_and_the_rest_429(api):
    alice = api.register()
    answers = [open_sse(api, alice) for _ in range(40)]
    try:
        codes = [a.status_code for a in answers]
        assert codes.count(200) == CAP and codes.count(429) == 40 - CAP
    finally:
        for answer in answers:
            answer.close()


def held_slots(api: Stack, headers: dict) -> int:
    """Slots in Redis: only a release removes one (an expired one goes at the next take)."""
    user_id = requests.get(api.url("/auth/me"), headers=headers, timeout=10).json()["id"]
    return int(redis.Redis.from_url(api.redis_url).zcard(f"scrapemaster:streams:{user_id}"))


def test_a_client_that_goes_away_frees_its_slot(api):
    alice = api.register()
    streams = [open_sse(api, alice) for _ in range(CAP)]
    assert_refused(open_sse(api, alice))
    assert held_slots(api, alice) == CAP
    streams.pop().close()  # the client drops the connection; the server notices at its next write
    wait_for(lambda: held_slots(api, alice) == CAP - 1, 10, message="the slot released")
    assert accepted(api, alice)
    for stream in streams:
        stream.close()


def test_slots_of_a_killed_api_process_expire(api):
    alice = api.register()
    streams = [open_sse(api, alice) for _ in range(CAP)]
    assert all(s.status_code == 200 for s in streams)
    assert held_slots(api, alice) == CAP
    api.stop_process("api", signal.SIGKILL)  # no close, no clean-up: nothing releases them
    for stream in streams:
        stream.close()
    api.start_api()
    # nothing refreshes them any more: they expire (3 heartbeats) and the user streams again,
    # where a plain counter would have stayed at the cap
    wait_for(lambda: accepted(api, alice), 15, message="the dead process's slots expired")
    wait_for(lambda: held_slots(api, alice) == 0, 10, message="the probe's slot released")
    more = [open_sse(api, alice) for _ in range(CAP)]
    assert all(s.status_code == 200 for s in more)
    for stream in more:
        stream.close()
