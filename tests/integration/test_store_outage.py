"""A dead MongoDB gives a fast 503 in the error shape, and readiness says so; nothing hangs."""

from __future__ import annotations

import time

import pytest

from deploy import embedded
from shared.settings import Settings
from testing.helpers import register_user

pytestmark = pytest.mark.integration


def test_store_down_answers_503_fast_and_readiness_names_it(redis_url):
    from api.app import create_app

    port = embedded.free_port()
    store = embedded.start_secantus(None, port)
    settings = Settings.from_env(
        {},
        env="test",
        redis_url=redis_url,
        mongo_url=store.url,
        mongo_db="outage",
        rate_limit_enabled=False,
        mongo_timeout_seconds=1.0,
    )
    client = create_app(settings).test_client()
    headers = register_user(client)
    assert client.get("/api/v1/health/ready").status_code == 200
    store.stop()
    try:
        started = time.monotonic()
        answer = client.get("/api/v1/jobs", headers=headers)
        assert time.monotonic() - started < 5  # server selection times out, no hang
        body = answer.get_json()
        assert answer.status_code == 503, body
        assert body["type"] == "unavailable" and "MongoDB" in body["detail"]
        assert answer.headers["Retry-After"] == "5" and body["request_id"]
        ready = client.get("/api/v1/health/ready")
        assert ready.status_code == 503 and "mongodb" in ready.get_json()["detail"]
        assert client.get("/api/v1/health").status_code == 200  # liveness: the process is up
    finally:
        store = embedded.start_secantus(None, port)
    try:
        assert client.get("/api/v1/health/ready").status_code == 200
    finally:
        store.stop()
