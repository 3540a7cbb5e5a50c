"""GET /usage, GET /admin/usage and quotas through PATCH /admin/users/{id}, on the API with
its real store: shapes, validation, and the 429 of a storage quota (which never resets)."""

from __future__ import annotations

import pymongo
import pytest

from api.app import create_app
from shared import jobs
from shared.files import JobFiles
from shared.usage import UsageStore
from testing.helpers import register_user

pytestmark = pytest.mark.integration

ADMIN = {"admin_username": "root", "admin_password": "admin-pass-1"}


@pytest.fixture
def api(settings):
    client = create_app(settings.with_(**ADMIN, quota_pages_per_month=1000)).test_client()
    answer = client.post(
        "/api/v1/auth/login", json={"username": "root", "password": "admin-pass-1"}
    )
    admin = {"Authorization": f"Bearer {answer.get_json()['access_token']}"}
    with pymongo.MongoClient(settings.mongo_url) as mongo:
        yield client, admin, mongo[settings.mongo_db]


def me(client, headers) -> str:
    return client.get("/api/v1/auth/me", headers=headers).get_json()["id"]


def test_usage_shows_the_month_and_the_quotas_in_force(api):
    client, admin, db = api
    user = register_user(client)
    answer = client.get("/api/v1/usage", headers=user)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["jobs"] == body["pages"] == body["bytes_stored"] == body["files"] == 0
    assert body["quotas"]["pages_per_month"] == 1000  # the QUOTA_* default
    assert body["period"]["start"].endswith("T00:00:00.000Z")
    assert (
        client.post("/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=user).status_code
        == 201
    )
    assert client.get("/api/v1/usage", headers=user).get_json()["jobs"] == 1
    assert client.get("/api/v1/usage").status_code == 401


def test_admin_sets_quotas_and_reads_everyones_usage(api):
    client, admin, db = api
    user = register_user(client)
    uid = me(client, user)
    path = f"/api/v1/admin/users/{uid}"
    shown = client.patch(path, json={"quotas": {"concurrent_jobs": 2}}, headers=admin)
    assert shown.status_code == 200
    assert shown.get_json()["quotas"]["concurrent_jobs"] == 2
    zero = client.patch(path, json={"quotas": {"pages_per_month": 0}}, headers=admin).get_json()
    assert zero["quotas"]["pages_per_month"] is None  # 0: unlimited for this user
    back = client.patch(path, json={"quotas": {"pages_per_month": None}}, headers=admin)
    assert back.get_json()["quotas"] == {
        "concurrent_jobs": 2,
        "pages_per_month": 1000,
        "browser_minutes_per_month": None,
        "storage_bytes": None,
    }
    bad = client.patch(path, json={"quotas": {"pages_per_month": -1}}, headers=admin)
    assert bad.status_code == 422 and "quotas.pages_per_month" in bad.get_json()["errors"]
    assert client.patch(path, json={"quotas": {"nope": 1}}, headers=admin).status_code == 422
    assert client.patch(path, json={"quotas": {}}, headers=user).status_code == 403

    UsageStore(db).add(uid, jobs.now(), {"pages": 5})
    table = client.get("/api/v1/admin/usage?group_by=user", headers=admin).get_json()
    assert [r["pages"] for r in table["usage"] if r["user_id"] == uid] == [5]
    days = client.get("/api/v1/admin/usage?group_by=day", headers=admin).get_json()
    assert days["total"]["pages"] == 5 and len(days["usage"]) == 1
    wrong = client.get("/api/v1/admin/usage?date_from=2026-02-01&date_to=2026-01-01", headers=admin)
    assert wrong.status_code == 422
    assert client.get("/api/v1/admin/usage?group_by=week", headers=admin).status_code == 422
    assert client.get("/api/v1/admin/usage", headers=user).status_code == 403
    listed = client.get("/api/v1/admin/users", headers=admin).get_json()["users"]
    row = next(u for u in listed if u["id"] == uid)
    assert row["usage"]["pages"] == 5 and row["quotas"]["concurrent_jobs"] == 2


def test_storage_quota_refuses_at_submit_exactly_at_the_limit(api):
    client, admin, db = api
    user = register_user(client)
    uid = me(client, user)
    client.patch(
        f"/api/v1/admin/users/{uid}", json={"quotas": {"storage_bytes": 100}}, headers=admin
    )
    JobFiles(db).put("j1", uid, "http://127.0.0.1:9/", "screenshot", "image/png", b"x" * 99)
    job = {"url": "http://127.0.0.1:9/"}
    assert client.post("/api/v1/jobs", json=job, headers=user).status_code == 201  # 99 < 100
    JobFiles(db).put("j1", uid, "http://127.0.0.1:9/2", "screenshot", "image/png", b"x")
    refused = client.post("/api/v1/jobs", json=job, headers=user)
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["type"] == "quota_exceeded" and body["quota"] == "storage_bytes"
    assert body["used"] == 100 and body["limit"] == 100 and body["resets_at"] is None
    usage = client.get("/api/v1/usage", headers=user).get_json()
    assert usage["bytes_stored"] == 100 and usage["files"] == 2


def test_a_run_stops_once_its_owners_browser_minutes_are_used_up(db):
    from shared.results import ItemSink

    sink = ItemSink(db, "j1", max_pages=10, run_id="r1", count_existing=False)
    try:
        sink.browser_budget = 1.0  # what the quota left as the run started
        sink.browser_time(0.6)
        assert not sink.should_stop
        sink.browser_time(0.5)
        assert sink.should_stop and sink.quota is not None
        assert sink.quota["type"] == "quota_exceeded"
    finally:
        counters = sink.close()
    assert counters["browser_seconds"] == 1.1
