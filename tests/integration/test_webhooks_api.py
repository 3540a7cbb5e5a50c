"""Webhook subscriptions over HTTP: the secret shown once, changes, limits and ownership."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from api.app import create_app
from shared.db import ensure_indexes
from shared.jobs import now
from shared.webhooks import WebhookRepository
from testing.helpers import register_user

pytestmark = pytest.mark.integration
HOOK = {"webhook_url": "http://127.0.0.1:9/hook"}


def test_the_secret_is_shown_once_and_the_hook_can_be_changed_and_removed(client, auth):
    made = client.post("/api/v1/webhooks", json=HOOK, headers=auth)
    hook = made.get_json()
    assert made.status_code == 201 and hook["secret"].startswith("whsec_")
    assert hook["events"] == ["job.started", "job.completed", "job.failed", "job.cancelled"]
    listed = client.get("/api/v1/webhooks", headers=auth).get_json()
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    changed = client.patch(
        f"/api/v1/webhooks/{hook['id']}",
        json={"enabled": False, "events": ["job.failed"]},
        headers=auth,
    )
    assert changed.get_json()["enabled"] is False and changed.get_json()["events"] == ["job.failed"]
    assert client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth).get_json() == []
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=auth).status_code == 204
    gone = client.get(f"/api/v1/webhooks/{hook['id']}", headers=auth)
    assert gone.status_code == 404 and gone.get_json()["type"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"webhook_url": "ftp://example.test/"}, "webhook_url"),
        ({**HOOK, "events": ["job.exploded"]}, "events.0"),
        ({**HOOK, "secret": "short"}, "secret"),
        ({**HOOK, "events": []}, "events"),
    ],
)
def test_bad_webhooks_answer_422_naming_the_field(client, auth, body, field):
    answer = client.post("/api/v1/webhooks", json=body, headers=auth)
    assert answer.status_code == 422 and field in answer.get_json()["errors"], answer.get_json()


def test_a_user_has_at_most_max_webhooks_per_user(settings):
    client = create_app(settings.with_(max_webhooks_per_user=2)).test_client()
    headers = register_user(client)
    for _ in range(2):
        assert client.post("/api/v1/webhooks", json=HOOK, headers=headers).status_code == 201
    third = client.post("/api/v1/webhooks", json=HOOK, headers=headers)
    assert third.status_code == 409 and "MAX_WEBHOOKS_PER_USER" in third.get_json()["detail"]
    other = register_user(client)
    assert client.post("/api/v1/webhooks", json=HOOK, headers=other).status_code == 201


def test_the_delivery_log_is_the_newest_attempts_first_however_long_it_is(db):
    ensure_indexes(db)
    repo, at, rng = WebhookRepository(db), now(), random.Random(3)
    hook = {"_id": "h1", "owner_id": "alice", "created_at": at - timedelta(days=30)}
    db.webhooks.insert_one(dict(hook))
    offsets = [rng.uniform(0, 30 * 86400) for _ in range(400)]  # spread over 30 days
    offsets += [rng.uniform(0, 600) for _ in range(50)] + [-120.0, -3600.0]  # recent; 2 due
    attempts = [
        {
            "_id": f"a{i}",
            "webhook_id": "h1",
            "owner_id": "alice" if i % 9 else "mallory",  # someone else's, same hook id
            "timestamp": at - timedelta(seconds=offset),
        }
        for i, offset in enumerate(offsets)
    ]
    db.webhook_deliveries.insert_many(attempts)
    mine = [a for a in attempts if a["owner_id"] == "alice"]
    mine.sort(key=lambda a: (a["timestamp"], a["_id"]), reverse=True)
    assert [a["_id"] for a in repo.log(hook)] == [a["_id"] for a in mine[:100]]
    assert [a["_id"] for a in repo.log(hook, limit=1000)] == [a["_id"] for a in mine]
