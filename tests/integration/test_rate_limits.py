"""Per-user rate limits in Redis: headers on every answer, 429 in the error shape beyond."""

from __future__ import annotations

import pytest

from api.app import create_app
from testing.helpers import register_user

pytestmark = pytest.mark.integration


@pytest.fixture
def limited(settings):
    s = settings.with_(
        rate_limit_enabled=True,
        rate_limit_authenticated="6/minute",
        rate_limit_anonymous="4/minute",
    )
    return create_app(s), create_app(s)  # two API processes sharing one Redis


def test_authenticated_budget_is_per_user_and_shared_across_processes(limited):
    first, second = (app.test_client() for app in limited)
    alice = register_user(first)  # register + login: two anonymous requests
    bob = register_user(first, password="another-pass")
    answers = [c.get("/api/v1/jobs", headers=alice) for c in (first, second, first)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].headers["X-RateLimit-Limit"] == "6"
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
    assert blocked.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(blocked.headers["Retry-After"]) <= 60
    # another user has a budget of their own
    assert first.get("/api/v1/jobs", headers=bob).status_code == 200


def test_anonymous_budget_is_per_address_and_health_is_exempt(limited):
    client = limited[0].test_client()
    statuses = [client.get("/api/v1/jobs").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    assert client.get("/api/v1/health").status_code == 200
