"""The API under a fuzzer (schemathesis, positive and negative cases from the OpenAPI document)
and an object-level authorization sweep generated from the same document."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings

from shared import db as dbmod
from shared.files import JobFiles
from testing.helpers import register_user

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 8  # x 2 modes x ~70 operations: ~1,100 calls


@pytest.fixture
def fuzz_app(settings):
    from api.app import create_app

    # the fuzzer logs in many times with made-up names: the lockout would answer 429 (fine,
    # but it would hide the login code from the fuzzer)
    # (and no worker runs here: a selector preview answers 503 after its short pickup wait)
    return create_app(
        settings.with_(
            login_lockout_enabled=False,
            admin_username="root",
            admin_password="admin-pass-1",
            preview_pickup_seconds=0.2,
        )
    )


def _has_inputs(operation) -> bool:
    """Whether a negative case can be made: parameters, a body, or credentials to spoil."""
    definition = operation.definition.raw
    return bool(
        definition.get("parameters")
        or definition.get("requestBody")
        or definition.get("security", [{}]) != []
    )


@pytest.mark.slow
@pytest.mark.timeout(600)  # a hang fails the test
def test_fuzzing_every_operation_gives_no_server_error(fuzz_app):
    """No answer >= 500 (but the documented 503), and every answer as the document says:
    status code, content type, headers and body schema (errors included)."""
    import schemathesis
    from schemathesis import GenerationMode

    client = fuzz_app.test_client()
    user = register_user(client)
    token = client.post(
        "/api/v1/auth/login", json={"username": "root", "password": "admin-pass-1"}
    ).get_json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}  # reaches the admin-only operations too
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)
    operations = [
        operation
        for operation in (result.ok() for result in schema.get_all_operations())
        # event streams never end by design: their auth and inputs are tested in test_events
        if not operation.path.endswith("/events")
    ]
    sent, failures, nonconforming = [0], [], {}
    for mode, operation in itertools.product(
        (GenerationMode.POSITIVE, GenerationMode.NEGATIVE), operations
    ):
        if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
            continue  # GET /health: nothing to get wrong
        fuzz(operation, mode, user, sent, failures, nonconforming)
        if operation.path.startswith(ADMIN_PATHS):  # the admin-only inputs and answers
            fuzz(operation, mode, admin, sent, failures, nonconforming)
    print(
        f"fuzz: {sent[0]} requests over {len(operations)} operations, {len(failures)} >= 500, "
        f"{len(nonconforming)} operations answering other than documented"
    )
    assert sent[0] >= len(operations) * 2
    assert failures == []
    assert nonconforming == {}


ADMIN_PATHS = ("/api/v1/proxies", "/api/v1/monitoring", "/api/v1/metrics", "/api/v1/admin")


def fuzz(
    operation, mode, headers: dict, sent: list[int], failures: list[str], nonconforming: dict
) -> None:
    """Up to EXAMPLES_PER_OPERATION generated calls of one operation, each answer checked
    against the document."""
    from schemathesis.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(case):
        response = case.call(headers=headers)
        sent[0] += 1
        # 503 is the documented answer while a dependency is down (no workers in this test)
        name = f"{operation.method.upper()} {operation.path}"
        if response.status_code >= 500 and response.status_code != 503:
            failures.append(f"{name} -> {response.status_code}: {response.text[:200]}")
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except BaseExceptionGroup as exc:  # schemathesis raises a FailureGroup
            nonconforming.setdefault(name, f"{response.status_code}: {str(exc)[:600]}")

    call()


def _fill(path: str, ids: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in ids:
            raise AssertionError(f"no resource of another user for {{{name}}} in {path}: add one")
        return ids[name]

    return re.sub(r"\{(\w+)\}", one, path)


def test_another_users_resources_answer_404_or_403_on_every_operation(fuzz_app):
    client = fuzz_app.test_client()
    owner, intruder = register_user(client), register_user(client)
    admin_token = client.post(
        "/api/v1/auth/login", json={"username": "root", "password": "admin-pass-1"}
    ).get_json()["access_token"]
    admin = {"Authorization": f"Bearer {admin_token}"}
    job = client.post("/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=owner)
    key = client.post("/api/v1/auth/api-keys", json={"name": "mine"}, headers=owner)
    proxy = client.post("/api/v1/proxies", json={"url": "http://127.0.0.1:3128"}, headers=admin)
    hook = client.post(
        "/api/v1/webhooks", json={"webhook_url": "http://127.0.0.1:9/hook"}, headers=owner
    )
    schedule = client.post(
        "/api/v1/schedules",
        json={"name": "mine", "cron": "0 * * * *", "job": {"url": "http://127.0.0.1:9/"}},
        headers=owner,
    )
    ids = {
        "schedule_id": schedule.get_json()["id"],
        "hook_id": hook.get_json()["id"],
        "delivery_id": "any",
        "job_id": job.get_json()["id"],
        "file_id": JobFiles(dbmod.database(fuzz_app.config["SETTINGS"])).put(
            job.get_json()["id"], "owner", "http://127.0.0.1:9/", "pdf", "application/pdf", b"%PDF"
        )["id"],
        "key_id": key.get_json()["id"],
        "proxy_id": proxy.get_json()["id"],
        "user_id": client.get("/api/v1/auth/me", headers=owner).get_json()["id"],
    }
    document = client.get("/api/openapi.json").get_json()
    bodies = {"put": {"priority": 5}, "patch": {"priority": 5}, "post": {}}
    checked = 0
    for path, item in document["paths"].items():
        if "{" not in path:
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            if method not in item:
                continue
            url = _fill(path, ids)
            body = (
                {"enabled": False}
                if "/webhooks/" in path or "/schedules/" in path
                else bodies.get(method)
            )
            answer = client.open(url, method=method.upper(), json=body, headers=intruder)
            assert answer.status_code in (403, 404), (method, path, answer.status_code)
            assert answer.get_json()["type"] in ("forbidden", "not_found")
            checked += 1
    assert checked >= 14
    # and the owner's things are all still there
    assert client.get(f"/api/v1/jobs/{ids['job_id']}", headers=owner).status_code == 200
    mine = client.get(f"/api/v1/schedules/{ids['schedule_id']}", headers=owner).get_json()
    assert mine["enabled"] is True
    keys = client.get("/api/v1/auth/api-keys", headers=owner).get_json()
    assert [k["id"] for k in keys] == [ids["key_id"]]
