"""Monitoring through the running service: health pings, queues, stats and metrics."""

from __future__ import annotations

import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from deploy import embedded
from testing.helpers import Stack, wait_for
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SECRETS = {
    "ADMIN_USERNAME": "root",
    "ADMIN_PASSWORD": f"admin-{uuid.uuid4().hex}",
    "JWT_SECRET_KEY": f"jwt-{uuid.uuid4().hex}",
}


def admin_headers(stack: Stack) -> dict:
    answer = requests.post(
        stack.url("/auth/login"),
        json={"username": "root", "password": SECRETS["ADMIN_PASSWORD"]},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    """A redis-server this module may stop and start again on the same port."""
    port = embedded.free_port()
    workdir = tmp_path_factory.mktemp("redis-mon")
    holder = {"service": embedded.start_redis(workdir, port)}
    holder["restart"] = lambda: holder.__setitem__("service", embedded.start_redis(workdir, port))
    yield holder
    holder["service"].stop()


@pytest.fixture(scope="module")
def mon_stack(own_redis, mongo_url, tmp_path_factory):
    stack = Stack(
        own_redis["service"].url,
        mongo_url,
        f"mon_{embedded.free_port()}",
        tmp_path_factory.mktemp("mon"),
    )
    try:
        stack.start(api=True, queues=("scrapy",), **SECRETS)
        yield stack
    finally:
        stack.stop()


def test_fleet_monitoring_is_for_admins_only(mon_stack):
    user = mon_stack.register()
    for path in ("/monitoring/system", "/monitoring/queues", "/monitoring/proxies", "/metrics"):
        answer = requests.get(mon_stack.url(path), headers=user, timeout=10)
        assert answer.status_code == 403, path
        assert answer.json()["type"] == "forbidden"
        assert requests.get(mon_stack.url(path), timeout=10).status_code == 401


def test_system_reports_every_part_healthy(mon_stack):
    headers = admin_headers(mon_stack)
    answer = requests.get(mon_stack.url("/monitoring/system"), headers=headers, timeout=10)
    body = answer.json()
    assert answer.status_code == 200, body
    assert {k: body[k] for k in ("redis", "mongodb", "api", "workers")} == dict.fromkeys(
        ("redis", "mongodb", "api", "workers"), "healthy"
    )
    assert body["timestamp"].endswith("Z") and body["worker_count"] == 1


def test_stats_queues_and_metrics_after_a_job(mon_stack):
    headers = mon_stack.register()
    with SiteServer(pages=2) as site:
        job = mon_stack.submit(
            headers,
            url=f"{site.url}/catalog/",
            engine="scrapy",
            selectors={"t": "h2::text"},
            config={
                "item_selector": "div.product",
                "follow_links": True,
                "link_selector": "li.next a",
            },
        )
        mon_stack.wait_job(job["id"], headers)
    stats = requests.get(mon_stack.url("/monitoring/stats"), headers=headers, timeout=10).json()
    headers = admin_headers(mon_stack)
    assert stats["status_counts"]["completed"] == 1 and stats["total_items_scraped"] == 20
    assert stats["success_rate"] == 1.0 and stats["jobs_last_24h"] == stats["total_jobs"] == 1
    queues = requests.get(mon_stack.url("/monitoring/queues"), headers=headers, timeout=10).json()
    assert queues["queues"]["scrapy"]["waiting"] == 0
    assert len(queues["workers"]) == 1
    assert list(queues["workers"].values())[0]["active"] == 0
    text = requests.get(mon_stack.url("/metrics"), headers=headers, timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    completed = [
        s for s in families["scrapemaster_jobs"].samples if s.labels == {"status": "completed"}
    ]
    assert completed[0].value >= 1
    assert families["scrapemaster_items_scraped"].samples[0].value >= 20
    assert "scrapemaster_job_duration_seconds" in families
    assert "scrapemaster_queue_depth" in families


def test_system_answers_503_naming_redis_when_it_is_down_and_recovers(mon_stack, own_redis):
    headers = admin_headers(mon_stack)
    own_redis["service"].stop()
    try:
        answer = requests.get(mon_stack.url("/monitoring/system"), headers=headers, timeout=15)
        body = answer.json()
        assert answer.status_code == 503
        assert body["redis"] == "unhealthy" and "redis" in body["detail"]
        assert body["mongodb"] == "healthy"
    finally:
        own_redis["restart"]()

    def healthy() -> bool:
        return (
            requests.get(
                mon_stack.url("/monitoring/system"), headers=headers, timeout=15
            ).status_code
            == 200
        )

    wait_for(healthy, 60, interval=0.5, message="system healthy again")


def test_flower_serves_and_lists_the_running_workers(mon_stack):
    import sys

    port = embedded.free_port()
    mon_stack.spawn(
        "flower",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers",
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
        ],
        FLOWER_BASIC_AUTH="ops:flower-pass",  # from the environment: not visible in `ps`
    )
    auth = ("ops", "flower-pass")

    def workers() -> dict:
        try:
            answer = requests.get(
                f"http://127.0.0.1:{port}/api/workers?refresh=1", auth=auth, timeout=5
            )
        except requests.RequestException:
            return {}
        return answer.json() if answer.ok else {}

    listed = wait_for(workers, 60, interval=0.5, message="Flower listing the worker")
    assert any(name.startswith("worker-scrapy") for name in listed)
    # Flower shows each worker's Celery configuration: no secret may be in it
    shown = str(listed)
    assert "conf" in next(iter(listed.values()))
    for secret in (SECRETS["ADMIN_PASSWORD"], SECRETS["JWT_SECRET_KEY"]):
        assert secret not in shown
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 401
    mon_stack.stop_process("flower")
