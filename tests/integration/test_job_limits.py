"""MAX_PAGES_CAP and MAX_TIMEOUT_SECONDS are the bounds of max_pages and timeout_seconds:
lowering or raising them moves what a job may ask for."""

from __future__ import annotations

import pytest

from testing.helpers import register_user

pytestmark = pytest.mark.integration


def submit(client, headers, **config):
    return client.post(
        "/api/v1/jobs", json={"url": "http://127.0.0.1:9/", "config": config}, headers=headers
    )


def test_defaults_bound_max_pages_at_10000_and_timeout_at_3600(client, auth):
    assert submit(client, auth, max_pages=10_000, timeout_seconds=3_600).status_code == 201
    refused = submit(client, auth, max_pages=10_001, timeout_seconds=3_601)
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == {
        "config.max_pages": ["Must be between 1 and 10000."],
        "config.timeout_seconds": ["Must be between 1 and 3600."],
    }
    assert submit(client, auth, max_pages=0).status_code == 422


@pytest.mark.parametrize(("cap", "timeout"), [(50, 60), (50_000, 7_200)])
def test_the_settings_move_the_bounds_both_ways(settings, cap, timeout):
    from api.app import create_app

    client = create_app(
        settings.with_(max_pages_cap=cap, max_timeout_seconds=timeout)
    ).test_client()
    headers = register_user(client)
    assert submit(client, headers, max_pages=cap, timeout_seconds=timeout).status_code == 201
    refused = submit(client, headers, max_pages=cap + 1, timeout_seconds=timeout + 1)
    assert set(refused.get_json()["errors"]) == {"config.max_pages", "config.timeout_seconds"}
