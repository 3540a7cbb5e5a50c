"""The proxy pool over HTTP and in MongoDB: admin CRUD, rotation, ban rules, health checks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.app import create_app
from shared import jobs
from shared.proxies import ProxyRepository
from testing.helpers import closed_port
from testing.proxy_server import ForwardProxy
from testing.sites.server import SiteServer

pytestmark = pytest.mark.integration
BASE = "/api/v1/proxies"


@pytest.fixture
def admin_client(settings):
    client = create_app(settings.with_(admin_username="root", admin_password="admin-pass-1"))
    client = client.test_client()
    token = client.post(
        "/api/v1/auth/login", json={"username": "root", "password": "admin-pass-1"}
    ).get_json()
    return client, {"Authorization": f"Bearer {token['access_token']}"}


@pytest.fixture
def repo(db):
    return ProxyRepository(db, cooldown_seconds=60, ban_after=3)


def test_admin_adds_lists_changes_and_removes_proxies(admin_client):
    client, admin = admin_client
    made = client.post(BASE, json={"url": "http://127.0.0.1:3128"}, headers=admin)
    assert made.status_code == 201, made.get_json()
    proxy = made.get_json()
    assert proxy["status"] == "active" and proxy["success_count"] == proxy["failure_count"] == 0
    assert [p["id"] for p in client.get(BASE, headers=admin).get_json()] == [proxy["id"]]
    changed = client.patch(f"{BASE}/{proxy['id']}", json={"status": "banned"}, headers=admin)
    assert changed.status_code == 200 and changed.get_json()["status"] == "banned"
    renamed = client.patch(
        f"{BASE}/{proxy['id']}", json={"url": "https://10.0.0.1:8443"}, headers=admin
    )
    assert renamed.get_json()["url"] == "https://10.0.0.1:8443"
    socks = client.patch(f"{BASE}/{proxy['id']}", json={"url": "socks5://h:1080"}, headers=admin)
    assert socks.status_code == 422 and "SOCKS" in socks.get_json()["errors"]["url"][0]
    assert client.delete(f"{BASE}/{proxy['id']}", headers=admin).status_code == 204
    assert client.delete(f"{BASE}/{proxy['id']}", headers=admin).status_code == 404
    missing = client.patch(f"{BASE}/nope", json={"status": "active"}, headers=admin)
    assert missing.status_code == 404 and missing.get_json()["type"] == "not_found"


def test_duplicate_proxy_url_is_conflict(admin_client):
    client, admin = admin_client
    first = client.post(BASE, json={"url": "http://127.0.0.1:3128"}, headers=admin)
    assert first.status_code == 201
    again = client.post(BASE, json={"url": "http://127.0.0.1:3128"}, headers=admin)
    assert again.status_code == 409 and again.get_json()["type"] == "conflict"


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1:21", "http://127.0.0.1", "not a url", "", "http://:8080"]
)
def test_invalid_proxy_url_is_rejected(admin_client, url):
    client, admin = admin_client
    answer = client.post(BASE, json={"url": url}, headers=admin)
    assert answer.status_code == 422 and "url" in str(answer.get_json())


def test_invalid_status_is_rejected(admin_client):
    client, admin = admin_client
    proxy = client.post(BASE, json={"url": "http://127.0.0.1:3128"}, headers=admin).get_json()
    answer = client.patch(f"{BASE}/{proxy['id']}", json={"status": "dead"}, headers=admin)
    assert answer.status_code == 422


def test_non_admin_cannot_see_or_manage_proxies(client, auth):
    assert client.get(BASE, headers=auth).status_code == 403
    answer = client.post(BASE, json={"url": "http://127.0.0.1:3128"}, headers=auth)
    assert answer.status_code == 403 and answer.get_json()["type"] == "forbidden"
    assert client.delete(f"{BASE}/x", headers=auth).status_code == 403
    assert client.get(BASE).status_code == 401


def test_job_config_proxy_is_none_or_pool_and_a_url_only_for_admins(admin_client, auth):
    client, admin = admin_client
    job = {"url": "http://127.0.0.1:9/", "engine": "scrapy"}
    for proxy in ("none", "pool"):
        answer = client.post("/api/v1/jobs", json={**job, "config": {"proxy": proxy}}, headers=auth)
        assert answer.status_code == 201, (proxy, answer.get_json())
    for proxy in ("http://127.0.0.1:3128", "https://u:p@127.0.0.1:8443"):
        # a user's own proxy is a connection the target policy cannot see through
        answer = client.post("/api/v1/jobs", json={**job, "config": {"proxy": proxy}}, headers=auth)
        assert answer.status_code == 422 and "config.proxy" in answer.get_json()["errors"]
        answer = client.post(
            "/api/v1/jobs", json={**job, "config": {"proxy": proxy}}, headers=admin
        )
        assert answer.status_code == 201, (proxy, answer.get_json())
    bad = client.post("/api/v1/jobs", json={**job, "config": {"proxy": "ftp://x:1"}}, headers=admin)
    assert bad.status_code == 422


def test_pick_spreads_over_the_active_proxies(repo):
    ids = {repo.add(f"http://127.0.0.1:{3000 + i}")["_id"] for i in range(3)}
    picked = [repo.pick()["_id"] for _ in range(9)]
    assert set(picked) == ids and all(picked.count(i) == 3 for i in ids)


def test_bans_cool_a_proxy_down_then_ban_it_and_pick_skips_it(repo):
    bad = repo.add("http://127.0.0.1:3001")["_id"]
    good = repo.add("http://127.0.0.1:3002")["_id"]
    doc = repo.record_failure(bad, "HTTP 403", ban=True)
    assert doc["status"] == "cooldown" and doc["ban_count"] == 1 and doc["failure_count"] == 1
    assert doc["cooldown_until"] > jobs.now() + timedelta(seconds=50)
    assert {repo.pick()["_id"] for _ in range(3)} == {good}
    # a request that was in flight when it cooled down counts, but is not a second ban
    assert repo.record_failure(bad, "late", ban=True)["ban_count"] == 1
    for expected_status, expected_wait in (("cooldown", 120), ("banned", None)):
        repo.proxies.update_one(
            {"_id": bad}, {"$set": {"status": "cooldown", "cooldown_until": jobs.now()}}
        )
        assert repo.pick(exclude=[good])["_id"] == bad  # cool-down over: on probation
        doc = repo.record_failure(bad, "HTTP 429", ban=True)
        assert doc["status"] == expected_status
        if expected_wait:
            assert doc["cooldown_until"] > jobs.now() + timedelta(seconds=expected_wait - 10)
    assert doc["ban_count"] == 3
    assert repo.pick(exclude=[good]) is None


def test_success_updates_counts_latency_and_ends_the_ban_streak(repo):
    proxy = repo.add("http://127.0.0.1:3001")["_id"]
    repo.proxies.update_one({"_id": proxy}, {"$set": {"consecutive_bans": 2}})
    repo.record_success(proxy, 100)
    repo.record_success(proxy, 300)
    repo.record_failure(proxy, "HTTP 500 relayed", ban=False)
    doc = repo.get(proxy)
    assert doc["success_count"] == 2 and doc["failure_count"] == 1
    assert doc["avg_latency_ms"] == 200 and doc["consecutive_bans"] == 0
    assert doc["status"] == "active" and doc["last_error"] == "HTTP 500 relayed"


def test_check_brings_back_a_recovered_proxy_and_keeps_a_dead_one_down(repo):
    with ForwardProxy() as alive, closed_port() as refusing:
        back = repo.add(alive.url)["_id"]
        dead = repo.add(f"http://127.0.0.1:{refusing}")["_id"]
        for proxy in (back, dead):
            repo.update(proxy, status="banned")
        assert repo.check() == {"recovered": 1, "still_down": 1}
    assert repo.get(back)["status"] == "active" and repo.get(back)["last_checked_at"]
    assert repo.get(dead)["status"] == "banned" and "check failed" in repo.get(dead)["last_error"]


def test_check_through_the_check_url_needs_the_target_to_answer(db):
    with SiteServer(pages=1) as site, ForwardProxy() as good, ForwardProxy("forbid") as bad:
        repo = ProxyRepository(db, check_url=f"{site.url}/catalog/", check_timeout=5)
        ok, refused = repo.add(good.url)["_id"], repo.add(bad.url)["_id"]
        repo.update(ok, status="cooldown", cooldown_until=jobs.now() + timedelta(hours=1))
        repo.update(refused, status="banned")
        assert repo.check() == {"recovered": 1, "still_down": 1}
        assert good.hits == [f"{site.url}/catalog/"]
        assert repo.get(refused)["last_error"] == "check answered HTTP 403"


def test_monitoring_proxies_counts_and_success_rates(admin_client, auth, repo):
    client, admin = admin_client
    a, b = repo.add("http://127.0.0.1:3001")["_id"], repo.add("http://127.0.0.1:3002")["_id"]
    c = repo.add("http://127.0.0.1:3003")["_id"]
    for _ in range(3):
        repo.record_success(a, 10)
    repo.record_failure(a, "x", ban=False)  # a: 0.75
    repo.record_success(b, 10)  # b: 1.0
    repo.update(c, status="banned")
    repo.proxies.update_one({"_id": c}, {"$set": {"success_count": 1, "failure_count": 3}})
    assert client.get("/api/v1/monitoring/proxies", headers=auth).status_code == 403
    body = client.get("/api/v1/monitoring/proxies", headers=admin).get_json()
    assert body == {
        "total_proxies": 3,
        "by_status": {
            "active": {"count": 2, "avg_success_rate": 0.875},
            "cooldown": {"count": 0, "avg_success_rate": None},
            "banned": {"count": 1, "avg_success_rate": 0.25},
        },
    }
    assert client.get("/api/v1/monitoring/proxies").status_code == 401
