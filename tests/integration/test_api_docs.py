"""docs/api.md and the guide hold true against the app: every path and method the reference
lists is served, every served path is documented, and the documented error is the real one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs"
NOT_OPENAPI = {"/ws"}  # a WebSocket upgrade: no OpenAPI operation describes one


def _shape(path: str) -> str:
    """`/jobs/{id}/logs` and `/jobs/{job_id}/logs` are one path: compare without names."""
    return re.sub(r"\{[^}]*\}", "{}", path.split("?")[0].rstrip("/"))


def documented_operations() -> set[tuple[str, str]]:
    """(method, path shape) of every row of docs/api.md's endpoint tables."""
    found = set()
    for methods, path in re.findall(
        r"^\| ([A-Z/]+)[^|]*\| (/[^ |]*) \|", (DOCS / "api.md").read_text(), re.M
    ):
        if _shape(path) in NOT_OPENAPI:
            continue
        for method in methods.split("/"):
            found.add((method.lower(), _shape(path)))
    return found


@pytest.fixture
def document(client) -> dict:
    return client.get("/api/openapi.json").get_json()


@pytest.fixture
def served(document) -> set[tuple[str, str]]:
    return {
        (method, _shape(path.removeprefix("/api/v1")))
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_every_operation_in_the_api_reference_is_served(served):
    documented = documented_operations()
    assert len(documented) > 40
    assert documented - served == set()


def test_every_served_path_is_in_the_api_reference(served):
    text = _shape_all((DOCS / "api.md").read_text())
    assert {path for _, path in served if path not in text} == set()


def _shape_all(text: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", text)


def test_the_error_the_guide_shows_is_the_one_the_api_answers(client, auth):
    guide = (DOCS / "guide" / "jobs.md").read_text()
    errors = guide[guide.index("## Errors") :]
    body = json.loads(re.search(r"request body `(\{.*?\})`", errors).group(1))
    shown = json.loads(re.search(r"```json\n(.*?)\n```", errors, re.S).group(1))
    answer = client.post("/api/v1/jobs", json=body, headers=auth)
    assert answer.status_code == 422
    real = answer.get_json()
    assert {k: real[k] for k in ("detail", "type", "errors")} == {
        k: shown[k] for k in ("detail", "type", "errors")
    }


def test_the_documented_query_defaults_and_maximums_are_those_served(document):
    operations = {
        (method, _shape(path.removeprefix("/api/v1"))): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method == "get"
    }
    rows = re.findall(r"^\| GET \| (/[^ |]*) \| (.*)$", (DOCS / "api.md").read_text(), re.M)
    checked = 0
    for path, text in rows:
        for name, default, most in re.findall(r"`(\w+)` \((?:(\d+), )?(?:max |≤ )(\d+)\)", text):
            params = operations[("get", _shape(path))]["parameters"]
            schema = next(p["schema"] for p in params if p["in"] == "query" and p["name"] == name)
            assert schema["maximum"] == int(most), (path, name)
            if default:
                assert schema["default"] == int(default), (path, name)
            checked += 1
    assert checked >= 5
