"""The OpenAPI document and the docs pages: paths as API.md, the real error shape, the real
security, schemas for every answer, and docs served from the service's own files."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration

COLLECTIONS = (
    "/api/v1/jobs",
    "/api/v1/webhooks",
    "/api/v1/schedules",
    "/api/v1/proxies",
    "/api/v1/auth/api-keys",
)
PUBLIC = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("get", "/api/v1/health"),
    ("get", "/api/v1/health/ready"),
}


@pytest.fixture
def document(client):
    return client.get("/api/openapi.json").get_json()


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, operation


def test_collection_paths_are_those_of_api_md_without_a_trailing_slash(document):
    for path in COLLECTIONS:
        assert path in document["paths"]
    assert [p for p in document["paths"] if p.endswith("/")] == []


def test_a_trailing_slash_still_reaches_the_collection(client, auth):
    created = client.post("/api/v1/jobs/", json={"url": "http://127.0.0.1:9/"}, headers=auth)
    assert created.status_code == 201
    listed = client.get("/api/v1/jobs/", headers=auth)
    assert [job["id"] for job in listed.get_json()] == [created.get_json()["id"]]


def test_the_documented_error_is_the_one_the_api_answers(client, document):
    schema = document["components"]["schemas"]["ErrorOut"]
    assert set(schema["properties"]) == {"detail", "type", "errors", "request_id"}
    assert set(schema["required"]) == {"detail", "type", "request_id"}
    answer = client.get("/api/v1/jobs").get_json()
    assert set(answer) == {"detail", "type", "request_id"}
    assert answer["type"] in schema["properties"]["type"]["enum"]
    for name, response in document["components"]["responses"].items():
        if "content" in response:
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/ErrorOut", name


def test_every_operation_documents_its_errors(document):
    for method, path, operation in operations(document):
        codes = set(operation["responses"])
        where = f"{method} {path}"
        if (method, path) in PUBLIC:
            assert operation["security"] == [], where
            assert "401" not in codes, where
        else:
            assert "security" not in operation, where  # the document's default: a token
            assert "401" in codes, where
        if "{" in path:
            assert "404" in codes, where
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= codes, where
        if path != "/api/v1/health":
            assert "429" in codes, where
        admin = path.startswith(
            ("/api/v1/proxies", "/api/v1/metrics", "/api/v1/admin")
        ) or path in (
            "/api/v1/monitoring/system",
            "/api/v1/monitoring/queues",
            "/api/v1/monitoring/proxies",
            "/api/v1/monitoring/auto",
        )
        # POST /auth/register: 403 while REGISTRATION is closed
        forbidden = admin or (method, path) == ("post", "/api/v1/auth/register")
        assert ("403" in codes) == forbidden, where
    conflicts = {
        (m, p) for m, p, o in operations(document) if "409" in o["responses"] and "{" not in p
    }
    assert ("post", "/api/v1/auth/register") in conflicts
    assert ("post", "/api/v1/webhooks") in conflicts


def test_exports_and_monitoring_answers_have_schemas(document):
    export = document["paths"]["/api/v1/results/{job_id}/export"]["get"]["responses"]["200"]
    assert set(export["content"]) == {"application/json", "text/csv", "application/x-ndjson"}
    for path in (
        "/api/v1/monitoring/stats",
        "/api/v1/monitoring/system",
        "/api/v1/monitoring/queues",
        "/api/v1/monitoring/proxies",
    ):
        ok = document["paths"][path]["get"]["responses"]["200"]
        assert ok["content"]["application/json"]["schema"]["$ref"], path


def test_login_takes_json_or_form_and_refresh_only_a_refresh_token(client):
    client.post(
        "/api/v1/auth/register",
        json={"username": "formuser", "email": "f@example.test", "password": "long-enough"},
    )
    by_form = client.post(
        "/api/v1/auth/login", data={"username": "formuser", "password": "long-enough"}
    )
    by_json = client.post(
        "/api/v1/auth/login", json={"username": "formuser", "password": "long-enough"}
    )
    assert by_form.status_code == by_json.status_code == 200
    missing = client.post("/api/v1/auth/login", data={"password": "x"})
    assert missing.status_code == 422
    assert missing.get_json()["errors"] == {"username": ["Missing data for required field."]}
    refreshed = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": by_form.get_json()["refresh_token"]}
    )
    assert refreshed.status_code == 200
    assert (
        client.get(
            "/api/v1/auth/me",
            headers={"Authorization": f"Bearer {refreshed.get_json()['access_token']}"},
        ).get_json()["username"]
        == "formuser"
    )


def test_docs_pages_load_only_the_services_own_files(client):
    for page in ("/api/docs", "/api/redoc"):
        answer = client.get(page)
        assert answer.status_code == 200
        html = answer.get_data(as_text=True)
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/") for s in sources), sources
        assert "default-src 'self'" in answer.headers["Content-Security-Policy"]
        for source in sources:
            asset = client.get(source)
            assert asset.status_code == 200, source
            assert len(asset.get_data()) > 10_000, source
    assert client.get("/api/docs/assets/../../app.py").status_code == 404
