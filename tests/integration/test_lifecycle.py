"""Job lifecycle over HTTP: the transition table, updates, batch operations, keys and roles."""

from __future__ import annotations

import pytest

from api.app import create_app
from shared.jobs import STATUSES
from testing.helpers import force_status, register_user

pytestmark = pytest.mark.integration

JOB = {"url": "http://127.0.0.1:9/catalog/", "selectors": {"title": "h1::text"}}

# action -> statuses it is allowed from (API.md § Jobs)
ALLOWED = {
    "cancel": {"pending", "running"},
    "retry": {"failed", "cancelled"},
    "reset": {"completed", "failed", "cancelled"},
}
AFTER = {"cancel": "cancelled", "retry": "pending", "reset": "pending"}


def make_job(client, auth, db, status="pending", **fields):
    job = client.post("/api/v1/jobs", json=JOB, headers=auth).get_json()
    force_status(db, job["id"], status, **fields)
    return job["id"]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", sorted(ALLOWED))
def test_transition_table(client, auth, db, action, status):
    job_id = make_job(client, auth, db, status, items_scraped=7)
    db.results.insert_one({"_id": f"{job_id}:a:0", "job_id": job_id, "seq": 1, "data": {}})
    answer = client.post(f"/api/v1/jobs/{job_id}/{action}", headers=auth)
    if status in ALLOWED[action]:
        assert answer.status_code == 200, answer.get_json()
        job = answer.get_json()
        assert job["status"] == AFTER[action]
        kept = db.results.count_documents({"job_id": job_id})
        assert kept == (0 if action == "reset" else 1)
        if action == "retry":
            assert job["attempts"] == 2 and job["error"] is None
        if action == "reset":
            assert job["items_scraped"] == 0 and job["progress"] == 0
    else:
        assert answer.status_code == 409
        body = answer.get_json()
        assert body["type"] == "conflict" and status in body["detail"]
        assert client.get(f"/api/v1/jobs/{job_id}", headers=auth).get_json()["status"] == status


@pytest.mark.parametrize("status", STATUSES)
def test_only_pending_jobs_can_be_changed(client, auth, db, status):
    job_id = make_job(client, auth, db, status)
    change = {"priority": "high", "selectors": {"h": "h2::text"}, "config": {"max_pages": 3}}
    for method in (client.patch, client.put):
        answer = method(f"/api/v1/jobs/{job_id}", json=change, headers=auth)
        if status == "pending":
            job = answer.get_json()
            assert answer.status_code == 200
            assert job["priority"] == 8 and job["selectors"] == {"h": "h2::text"}
            assert job["config"]["max_pages"] == 3
        else:
            assert answer.status_code == 409 and answer.get_json()["type"] == "conflict"


def test_update_is_validated_like_submit(client, auth, db):
    job_id = make_job(client, auth, db)
    answer = client.patch(
        f"/api/v1/jobs/{job_id}", json={"url": "ftp://x", "priority": 11}, headers=auth
    )
    assert answer.status_code == 422 and set(answer.get_json()["errors"]) == {"url", "priority"}


def test_an_update_is_checked_against_the_config_it_merges_into(client, auth, db):
    job = {**JOB, "config": {"item_selector": "div.product"}}
    job_id = client.post("/api/v1/jobs", json=job, headers=auth).get_json()["id"]
    answer = client.patch(
        f"/api/v1/jobs/{job_id}", json={"config": {"output": ["markdown"]}}, headers=auth
    )
    assert answer.status_code == 422, answer.get_json()
    assert list(answer.get_json()["errors"]) == ["config.output"]
    assert db.jobs.find_one({"_id": job_id})["config"] == {"item_selector": "div.product"}


def test_batch_delete_reports_each_id(client, auth, db):
    mine = make_job(client, auth, db, "completed")
    running = make_job(client, auth, db, "running")
    other = register_user(client)
    foreign = make_job(client, other, db)
    answer = client.delete(
        "/api/v1/jobs/batch", headers=auth, json={"job_ids": [mine, running, foreign, "missing"]}
    )
    body = answer.get_json()
    assert answer.status_code == 200
    assert body["deleted"] == 2 and body["failed"] == 2
    assert {e["job_id"] for e in body["errors"]} == {foreign, "missing"}
    assert all(e["type"] == "not_found" for e in body["errors"])
    assert db.jobs.count_documents({"_id": {"$in": [mine, running]}}) == 0
    assert db.jobs.count_documents({"_id": foreign}) == 1
    assert client.delete("/api/v1/jobs/batch", headers=auth, json={}).status_code == 422


def test_retry_failed_and_stats(client, auth, db):
    for status in ("failed", "failed", "completed", "cancelled", "pending"):
        make_job(client, auth, db, status)
    make_job(client, register_user(client), db, "failed")  # someone else's
    assert client.post("/api/v1/jobs/retry-failed", headers=auth).get_json() == {"retried": 2}
    stats = client.get("/api/v1/jobs/stats", headers=auth).get_json()
    assert stats == {
        "total": 5,
        "pending": 3,
        "running": 0,
        "completed": 1,
        "failed": 0,
        "cancelled": 1,
    }


def test_listing_sorts_and_filters_by_engine(client, auth, db):
    low = client.post("/api/v1/jobs", json={**JOB, "priority": 1}, headers=auth).get_json()
    high = client.post(
        "/api/v1/jobs", json={**JOB, "priority": 9, "engine": "scrapy"}, headers=auth
    ).get_json()
    by_priority = client.get("/api/v1/jobs?sort_by=priority&sort_order=desc", headers=auth)
    assert [j["id"] for j in by_priority.get_json()] == [high["id"], low["id"]]
    ascending = client.get("/api/v1/jobs?sort_by=created_at&sort_order=asc", headers=auth)
    assert [j["id"] for j in ascending.get_json()] == [low["id"], high["id"]]
    scrapy = client.get("/api/v1/jobs?engine=scrapy", headers=auth).get_json()
    assert [j["id"] for j in scrapy] == [high["id"]]


def test_logs_filter_by_level(client, auth, db):
    job_id = make_job(client, auth, db)
    from shared.jobs import log

    for level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        log(db, job_id, level, f"a {level.lower()} line")
    every = client.get(f"/api/v1/jobs/{job_id}/logs", headers=auth).get_json()["logs"]
    assert [line["level"] for line in every] == ["DEBUG", "INFO", "WARNING", "ERROR"]
    assert set(every[0]) == {"timestamp", "level", "message"}
    warnings = client.get(f"/api/v1/jobs/{job_id}/logs?level=warning", headers=auth).get_json()
    assert [line["message"] for line in warnings["logs"]] == ["a warning line", "a error line"]
    limited = client.get(f"/api/v1/jobs/{job_id}/logs?limit=1", headers=auth).get_json()
    assert len(limited["logs"]) == 1


def test_api_key_lifecycle(client, auth):
    created = client.post("/api/v1/auth/api-keys", json={"name": "ci"}, headers=auth)
    assert created.status_code == 201
    key = created.get_json()
    assert key["key"].startswith(key["prefix"]) and key["name"] == "ci"
    for headers in ({"X-API-Key": key["key"]}, {"Authorization": f"Bearer {key['key']}"}):
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    listed = client.get("/api/v1/auth/api-keys", headers=auth).get_json()
    assert [k["id"] for k in listed] == [key["id"]] and "key" not in listed[0]
    assert client.delete(f"/api/v1/auth/api-keys/{key['id']}", headers=auth).status_code == 204
    revoked = client.get("/api/v1/auth/me", headers={"X-API-Key": key["key"]})
    assert revoked.status_code == 401 and revoked.get_json()["type"] == "unauthorized"
    assert client.delete(f"/api/v1/auth/api-keys/{key['id']}", headers=auth).status_code == 404


def test_only_a_hash_of_the_key_is_stored(client, auth, db):
    key = client.post("/api/v1/auth/api-keys", json={"name": "x"}, headers=auth).get_json()
    stored = db.api_keys.find_one({"_id": key["id"]})
    assert key["key"] not in str(stored)


def test_admin_sees_and_manages_every_job_and_users_only_their_own(settings):
    app = create_app(settings.with_(admin_username="root", admin_password="admin-pass-1"))
    client = app.test_client()
    token = client.post(
        "/api/v1/auth/login", json={"username": "root", "password": "admin-pass-1"}
    ).get_json()
    admin = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=admin).get_json()["role"] == "admin"
    alice, bob = register_user(client), register_user(client)
    job = client.post("/api/v1/jobs", json=JOB, headers=alice).get_json()
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=bob).status_code == 404
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=bob).status_code == 404
    assert client.get("/api/v1/jobs", headers=bob).get_json() == []
    assert [j["id"] for j in client.get("/api/v1/jobs", headers=admin).get_json()] == [job["id"]]
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=admin).status_code == 200
    assert client.get("/api/v1/jobs/stats", headers=admin).get_json()["cancelled"] == 1


def test_items_a_worker_writes_after_a_delete_are_purged(client, auth, db):
    from shared.jobs import JobRepository

    running = make_job(client, auth, db, status="running", run_id="run-1")
    finished = make_job(client, auth, db, status="completed")
    for job_id in (running, finished):
        assert client.delete(f"/api/v1/jobs/{job_id}", headers=auth).status_code == 204
    # the worker of the running job had not noticed yet: its last batch and log line land now
    db.results.insert_one({"_id": f"{running}:late:0", "job_id": running, "data": {}})
    db.logs.insert_one({"job_id": running, "message": "completed: 1 pages, 1 items"})
    repo = JobRepository(db)
    assert repo.purge_deleted(horizon_seconds=3600) == 1
    assert db.results.count_documents({"job_id": running}) == 0
    assert db.logs.count_documents({"job_id": running}) == 0
    assert db.deleted_jobs.count_documents({}) == 1  # only the job that was active
    assert repo.purge_deleted(horizon_seconds=0) == 0  # past the horizon: tombstone dropped
    assert db.deleted_jobs.count_documents({}) == 0
