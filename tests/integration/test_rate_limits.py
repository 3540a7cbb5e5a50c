"""Rate limits that count what costs, in Redis: reads, writes, submissions (per user) and
anonymous calls (per address) each in a bucket of their own, told in X-RateLimit-* headers on
every answer; 429 in the error shape beyond, the other buckets untouched."""

from __future__ import annotations

import pytest

from api.app import create_app
from testing.dashboard_traffic import busiest_span, dashboard_hour, polling_script_hour
from testing.helpers import register_user

pytestmark = pytest.mark.integration


@pytest.fixture
def limited(settings):
    s = settings.with_(
        rate_limit_enabled=True,
        rate_limit_reads="6/minute",
        rate_limit_anonymous="4/minute",
    )
    return create_app(s), create_app(s)  # two API processes sharing one Redis


def test_read_budget_is_per_user_and_shared_across_processes(limited):
    first, second = (app.test_client() for app in limited)
    alice = register_user(first)  # register + login: two anonymous requests
    bob = register_user(first, password="another-pass")
    answers = [c.get("/api/v1/jobs", headers=alice) for c in (first, second, first)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].headers["X-RateLimit-Limit"] == "6"
    assert answers[0].headers["X-RateLimit-Bucket"] == "reads"
    assert int(answers[2].headers["X-RateLimit-Remaining"]) == 3
    assert int(answers[2].headers["X-RateLimit-Reset"]) > 0
    # "Retry-After" means "wait": only on the refusal, not on answers within the budget
    assert "Retry-After" not in answers[0].headers
    for _ in range(3):
        assert second.get("/api/v1/jobs", headers=alice).status_code == 200
    blocked = first.get("/api/v1/jobs", headers=alice)
    assert blocked.status_code == 429
    body = blocked.get_json()
    assert body["type"] == "rate_limited" and body["request_id"]
    assert "reads" in body["detail"]
    assert blocked.headers["X-RateLimit-Remaining"] == "0"
    assert blocked.headers["X-RateLimit-Bucket"] == "reads"
    assert 0 < int(blocked.headers["Retry-After"]) <= 60
    # another user has a budget of their own
    assert first.get("/api/v1/jobs", headers=bob).status_code == 200


def test_anonymous_budget_is_per_address_and_health_is_exempt(limited):
    client = limited[0].test_client()
    for _ in range(5):  # a CORS preflight or an Allow query: no work, not counted
        assert "X-RateLimit-Limit" not in client.options("/api/v1/jobs").headers
    answers = [client.get("/api/v1/jobs") for _ in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
    assert answers[0].headers["X-RateLimit-Bucket"] == "anonymous"
    assert client.get("/api/v1/health").status_code == 200


def test_submissions_beyond_their_budget_are_refused_while_reads_and_writes_go_on(settings):
    s = settings.with_(
        rate_limit_enabled=True, rate_limit_submissions="3/minute", rate_limit_writes="5/minute"
    )
    client = create_app(s).test_client()
    alice = register_user(client)
    jobs = [client.post("/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=alice)]
    assert jobs[0].status_code == 201, jobs[0].get_json()
    assert jobs[0].headers["X-RateLimit-Bucket"] == "submissions"
    assert jobs[0].headers["X-RateLimit-Limit"] == "3"
    assert jobs[0].headers["X-RateLimit-Remaining"] == "2"
    job_id = jobs[0].get_json()["id"]
    # a cancel is a write: its own budget, not the submissions'
    cancel = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=alice)
    assert cancel.status_code == 200, cancel.get_json()
    assert cancel.headers["X-RateLimit-Bucket"] == "writes"
    assert cancel.headers["X-RateLimit-Remaining"] == "4"
    retry = client.post(f"/api/v1/jobs/{job_id}/retry", headers=alice)  # starts work again
    assert retry.status_code == 200, retry.get_json()
    assert retry.headers["X-RateLimit-Bucket"] == "submissions"
    third = client.post("/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=alice)
    assert third.status_code == 201 and third.headers["X-RateLimit-Remaining"] == "0"

    refused = [
        client.post("/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=alice),
        client.post("/api/v1/jobs/preview", json={"url": "http://127.0.0.1:9/"}, headers=alice),
        client.post("/scrapyd/schedule.json", data={"project": "p", "spider": "s"}, headers=alice),
    ]
    for answer in refused:
        assert answer.status_code == 429, answer.get_data(as_text=True)
        assert answer.headers["X-RateLimit-Bucket"] == "submissions"
        assert answer.headers["X-RateLimit-Limit"] == "3"
        assert answer.headers["X-RateLimit-Remaining"] == "0"
        assert 0 < int(answer.headers["Retry-After"]) <= 60
    assert refused[0].get_json()["type"] == "rate_limited"
    assert "submissions" in refused[0].get_json()["detail"]

    # reads and writes still work, and tell their own budgets
    read = client.get(f"/api/v1/jobs/{job_id}", headers=alice)
    assert read.status_code == 200 and read.headers["X-RateLimit-Bucket"] == "reads"
    assert read.headers["X-RateLimit-Limit"] == "1200"  # the default
    write = client.delete(f"/api/v1/jobs/{third.get_json()['id']}", headers=alice)
    assert write.status_code in (200, 204, 409), write.get_data(as_text=True)
    assert write.headers["X-RateLimit-Bucket"] == "writes"
    # another user's submissions are theirs
    bob = register_user(client, password="another-pass")
    other = client.post("/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=bob)
    assert other.status_code == 201 and other.headers["X-RateLimit-Remaining"] == "2"


def test_query_token_calls_count_as_their_users_reads_and_open_nothing_else(settings):
    """The dashboard's event streams, thumbnails and downloads carry `?token=`: they count
    against the user's reads (not the address's anonymous budget), and a view that takes only
    headers still refuses the query token."""
    s = settings.with_(rate_limit_enabled=True, rate_limit_anonymous="2/minute")
    client = create_app(s).test_client()
    alice = register_user(client)  # the anonymous budget of this address is now spent
    token = alice["Authorization"].removeprefix("Bearer ")
    job_id = client.post(
        "/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=alice
    ).get_json()["id"]
    for _ in range(3):
        files = client.get(f"/api/v1/jobs/{job_id}/files/nofile?token={token}")
        assert files.status_code == 404, files.get_data(as_text=True)
        assert files.headers["X-RateLimit-Bucket"] == "reads"
    listing = client.get(f"/api/v1/jobs?token={token}")
    assert listing.status_code == 401  # counted as alice's read, but not let in
    assert listing.headers["X-RateLimit-Bucket"] == "reads"


def test_busiest_minute_of_an_hour_of_dashboard_and_polling_fits_the_read_budget(settings):
    """The hour of testing/dashboard_traffic.py compressed to what the budget sees: its busiest
    window of the read bucket's length (a minute by default), every call of it made against the
    API, in one real window: none refused, each counted."""
    s = settings.with_(rate_limit_enabled=True)  # the default budgets
    client = create_app(s).test_client()
    alice = register_user(client)
    token = alice["Authorization"].removeprefix("Bearer ")
    job_id = client.post(
        "/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=alice
    ).get_json()["id"]
    calls = busiest_span(sorted(dashboard_hour() + polling_script_hour()), 60)
    assert len(calls) > 500
    limit = remaining = None
    for _, method, path in calls:
        url = path.replace("{job}", job_id).replace("{file}", "f0").replace("…", token)
        headers = {} if "token=" in url else alice
        answer = client.open(url, method=method, headers=headers, buffered=False)
        answer.close()  # an event stream: opened, counted, left
        assert answer.status_code != 429, (url, answer.get_data(as_text=True))
        assert answer.headers["X-RateLimit-Bucket"] == "reads", url
        limit = int(answer.headers["X-RateLimit-Limit"])
        remaining = int(answer.headers["X-RateLimit-Remaining"])
    assert limit == 1200
    # every call counted in the one window, with room to spare
    assert remaining == limit - len(calls)
    assert remaining >= 0.4 * limit


def test_an_empty_budget_leaves_its_bucket_unlimited(settings):
    s = settings.with_(rate_limit_enabled=True, rate_limit_reads="", rate_limit_writes="1/minute")
    client = create_app(s).test_client()
    alice = register_user(client)
    for _ in range(3):
        read = client.get("/api/v1/jobs", headers=alice)
        assert read.status_code == 200 and "X-RateLimit-Limit" not in read.headers
    write = client.delete("/api/v1/jobs/batch", json={"job_ids": []}, headers=alice)
    assert write.headers["X-RateLimit-Limit"] == "1", write.get_data(as_text=True)


def test_the_openapi_document_names_each_operations_bucket(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]

    def bucket(path: str, method: str) -> str | None:
        return paths[path][method].get("x-rate-limit-bucket")

    assert bucket("/api/v1/jobs", "get") == "reads"
    assert bucket("/api/v1/jobs/{job_id}/events", "get") == "reads"
    assert bucket("/api/v1/jobs", "post") == "submissions"
    assert bucket("/api/v1/jobs/preview", "post") == "submissions"
    assert bucket("/api/v1/jobs/{job_id}/retry", "post") == "submissions"
    assert bucket("/api/v1/schedules/{schedule_id}/run", "post") == "submissions"
    assert bucket("/api/v1/jobs/{job_id}/cancel", "post") == "writes"
    assert bucket("/api/v1/jobs/{job_id}", "delete") == "writes"
    assert bucket("/api/v1/auth/login", "post") == "anonymous"
    assert bucket("/api/v1/health", "get") is None  # not counted
