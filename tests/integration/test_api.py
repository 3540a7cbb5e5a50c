"""The REST contract through the Flask app on a real MongoDB wire server and Redis."""

from __future__ import annotations

import pytest

from shared.jobs import JobRepository
from testing.helpers import register_user

pytestmark = pytest.mark.integration

GOOD = {"url": "http://127.0.0.1:9/catalog/", "selectors": {"title": "h1::text"}}


def assert_error(answer, status: int, type_: str, fields: set[str] | None = None) -> dict:
    assert answer.status_code == status, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["type"] == type_ and body["detail"] and body["request_id"]
    assert answer.headers["X-Request-ID"] == body["request_id"]
    if fields is not None:
        assert set(body["errors"]) == fields
    return body


def test_health_needs_no_auth(client):
    assert client.get("/api/v1/health").get_json() == {"status": "ok"}


def test_openapi_docs_are_served(client):
    spec = client.get("/api/openapi.json").get_json()
    assert "/api/v1/jobs" in spec["paths"] and "/api/v1/jobs/" not in spec["paths"]
    assert "JobCreate" in spec["components"]["schemas"]
    assert client.get("/api/docs").status_code == 200
    assert client.get("/api/redoc").status_code == 200


def test_register_login_refresh_me(client):
    answer = client.post(
        "/api/v1/auth/register",
        json={"username": "ada", "email": "ada@example.test", "password": "long-enough"},
    )
    assert answer.status_code == 201
    assert set(answer.get_json()) >= {"id", "username", "email", "role", "created_at"}
    assert "password" not in answer.get_json() and "password_hash" not in answer.get_json()
    duplicate = client.post(
        "/api/v1/auth/register",
        json={"username": "ada", "email": "x@example.test", "password": "long-enough"},
    )
    assert_error(duplicate, 409, "conflict")
    form = client.post("/api/v1/auth/login", data={"username": "ada", "password": "long-enough"})
    tokens = form.get_json()
    assert form.status_code == 200 and tokens["token_type"] == "bearer"
    assert tokens["expires_in"] > 0 and tokens["user"]["username"] == "ada"
    me = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).get_json()
    assert me["username"] == "ada" and me["role"] == "user" and me["last_login"]
    fresh = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert fresh.status_code == 200 and fresh.get_json()["access_token"]
    # a refresh token is not an access token, and vice versa
    assert_error(
        client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}
        ),
        401,
        "unauthorized",
    )
    assert_error(
        client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]}),
        401,
        "unauthorized",
    )


def test_wrong_password_says_exactly_that(client):
    register_user(client, "grace")
    answer = client.post("/api/v1/auth/login", json={"username": "grace", "password": "nope-nope"})
    assert answer.status_code == 401
    assert answer.get_json()["detail"] == "Incorrect username or password"
    unknown = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x" * 9})
    assert unknown.get_json()["detail"] == "Incorrect username or password"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"username": "ab", "email": "a@b.co", "password": "long-enough"}, {"username"}),
        ({"username": "abc", "email": "nope", "password": "long-enough"}, {"email"}),
        ({"username": "abc", "email": "a@b.co", "password": "short"}, {"password"}),
        ({}, {"username", "email", "password"}),
    ],
)
def test_register_validation_names_each_bad_field(client, body, fields):
    assert_error(client.post("/api/v1/auth/register", json=body), 422, "validation_error", fields)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic abc"},
        {"X-API-Key": "smk_unknown"},
    ],
)
def test_jobs_need_authentication(client, headers):
    assert_error(client.get("/api/v1/jobs", headers=headers), 401, "unauthorized")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"url"}),
        ({"url": "not a url"}, {"url"}),
        ({"url": "ftp://example.com/file"}, {"url"}),
        ({"url": "javascript:alert(1)"}, {"url"}),
        ({"url": 42}, {"url"}),
        ({**GOOD, "engine": "selenium"}, {"engine"}),
        ({**GOOD, "priority": "urgent"}, {"priority"}),
        ({**GOOD, "priority": 10}, {"priority"}),
        ({**GOOD, "config": {"max_pages": 0}}, {"config.max_pages"}),
        ({**GOOD, "config": {"max_pages": 10001}}, {"config.max_pages"}),
        ({**GOOD, "config": {"max_pages": "ten"}}, {"config.max_pages"}),
        ({**GOOD, "config": {"timeout_seconds": 0}}, {"config.timeout_seconds"}),
        ({**GOOD, "config": {"concurrency": 1000}}, {"config.concurrency"}),
        ({**GOOD, "config": {"nonsense": True}}, {"config.nonsense"}),
        ({**GOOD, "config": {"wait_until": "whenever"}}, {"config.wait_until"}),
        ({**GOOD, "config": {"item_selector": "div["}}, {"config.item_selector"}),
        ({**GOOD, "selectors": {"title": "h1["}}, {"selectors.title"}),
        ({**GOOD, "selectors": {"title": "//h1["}}, {"selectors.title"}),
        ({**GOOD, "selectors": {"title": "jmespath:items["}}, {"selectors.title"}),
        ({**GOOD, "config": {"link_selector": "jmespath:"}}, {"config.link_selector"}),
        ({**GOOD, "selectors": {"title": 5}}, {"selectors.title"}),
        ({**GOOD, "selectors": "h1"}, {"selectors"}),
        ({**GOOD, "webhook_url": "nope"}, {"webhook_url"}),
        ({**GOOD, "urls": []}, {"urls"}),
        ({**GOOD, "config": {"proxy": "not a proxy"}}, {"config.proxy"}),
    ],
)
def test_bad_job_input_is_422_naming_the_field(client, auth, body, fields):
    answer = client.post("/api/v1/jobs", json=body, headers=auth)
    assert_error(answer, 422, "validation_error", fields)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("{not json", "application/json"),
        ("url=http://x", "application/x-www-form-urlencoded"),
        ("[1, 2]", "application/json"),
    ],
)
def test_non_json_bodies_are_client_errors(client, auth, data, content_type):
    answer = client.post("/api/v1/jobs", data=data, headers={**auth, "Content-Type": content_type})
    assert answer.status_code in (400, 422)
    assert answer.get_json()["type"] == "validation_error"


def test_oversized_body_is_refused(client, auth, settings):
    huge = {"url": "http://example.com/", "selectors": {"x": "h1::text " + "a" * 2_000_000}}
    answer = client.post("/api/v1/jobs", json=huge, headers=auth)
    assert_error(answer, 413, "validation_error")


def test_unknown_path_and_wrong_method_use_the_error_shape(client, auth):
    assert_error(client.get("/api/v1/nothing", headers=auth), 404, "not_found")
    answer = client.delete("/api/v1/health")
    assert_error(answer, 405, "validation_error")
    assert "GET" in answer.headers["Allow"]


def test_submitted_job_is_pending_with_defaults(client, auth):
    answer = client.post("/api/v1/jobs", json={**GOOD, "priority": "high"}, headers=auth)
    assert answer.status_code == 201
    job = answer.get_json()
    assert job["status"] == "pending" and job["engine"] == "auto" and job["priority"] == 8
    assert job["created_at"].endswith("Z") and isinstance(job["id"], str)
    assert job["progress"] == 0 and job["items_scraped"] == 0 and job["attempts"] == 1
    again = client.get(f"/api/v1/jobs/{job['id']}", headers=auth).get_json()
    assert again["id"] == job["id"] and again["selectors"] == GOOD["selectors"]


def _fail(db, job_id):
    """Move a pending job to failed through the state machine (so its counters follow)."""
    repo = JobRepository(db)
    claimed = repo.transition(job_id, "claim")
    assert repo.finish(job_id, "fail", claimed["run_id"], error={"type": "x", "message": "x"})


def _links(answer) -> dict[str, str]:
    """rel -> URL path and query of a Link header."""
    found = {}
    for part in answer.headers["Link"].split(", "):
        url, rel = part.split("; ")
        found[rel.split('"')[1]] = url.strip("<>").replace("http://localhost", "")
    return found


def test_listing_pages_with_total_and_link_headers_and_filters(client, auth, db):
    ids = [client.post("/api/v1/jobs", json=GOOD, headers=auth).get_json()["id"] for _ in range(5)]
    _fail(db, ids[0])
    page = client.get("/api/v1/jobs?skip=2&limit=2", headers=auth)
    assert page.headers["X-Total-Count"] == "5"
    assert [j["id"] for j in page.get_json()] == list(reversed(ids))[2:4]
    links = _links(page)
    assert set(links) == {"first", "prev", "next", "last"}
    assert "skip=4" in links["last"]
    following = client.get(links["next"], headers=auth)
    assert [j["id"] for j in following.get_json()] == [ids[0]]
    assert "next" not in _links(following)
    back = client.get(_links(following)["prev"], headers=auth)
    assert [j["id"] for j in back.get_json()] == list(reversed(ids))[2:4]
    by_page = client.get("/api/v1/jobs?page=3&per_page=2", headers=auth).get_json()
    assert [j["id"] for j in by_page] == [ids[0]]
    failed = client.get("/api/v1/jobs?status=failed", headers=auth)
    assert [j["id"] for j in failed.get_json()] == [ids[0]]
    assert failed.headers["X-Total-Count"] == "1"
    assert_error(
        client.get("/api/v1/jobs?limit=101", headers=auth), 422, "validation_error", {"limit"}
    )
    assert_error(
        client.get("/api/v1/jobs?status=weird", headers=auth), 422, "validation_error", {"status"}
    )


def test_delete_removes_job_and_results(client, auth, db):
    job = client.post("/api/v1/jobs", json=GOOD, headers=auth).get_json()
    db.results.insert_one({"_id": f"{job['id']}:x:0", "job_id": job["id"], "data": {}})
    assert client.delete(f"/api/v1/jobs/{job['id']}", headers=auth).status_code == 204
    assert_error(client.get(f"/api/v1/jobs/{job['id']}", headers=auth), 404, "not_found")
    assert db.results.count_documents({"job_id": job["id"]}) == 0


def test_results_limits_are_enforced(client, auth):
    job = client.post("/api/v1/jobs", json=GOOD, headers=auth).get_json()
    assert_error(
        client.get(f"/api/v1/results/{job['id']}?limit=1001", headers=auth),
        422,
        "validation_error",
        {"limit"},
    )
    assert_error(
        client.get(f"/api/v1/results/{job['id']}/export?format=xml", headers=auth),
        422,
        "validation_error",
        {"format"},
    )
    empty = client.get(f"/api/v1/results/{job['id']}", headers=auth).get_json()
    assert empty == {"job_id": job["id"], "total": 0, "skip": 0, "limit": 100, "results": []}


def test_client_request_id_is_echoed(client):
    answer = client.get("/api/v1/jobs", headers={"X-Request-ID": "trace-123"})
    assert answer.headers["X-Request-ID"] == "trace-123"
    assert answer.get_json()["request_id"] == "trace-123"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://user:s3cret@127.0.0.1:9/"}, "url"),
        (
            {"url": "http://127.0.0.1:9/", "webhook_url": "http://a:b@127.0.0.1:9/hook"},
            "webhook_url",
        ),
        (
            {"url": "http://127.0.0.1:9/", "config": {"headers": {"Host": "internal"}}},
            "config.headers",
        ),
        (
            {"url": "http://127.0.0.1:9/", "config": {"headers": {"Metadata-Flavor": "Google"}}},
            "config.headers",
        ),
        (
            {"url": "http://127.0.0.1:9/", "config": {"headers": {"X-Forwarded-For": "1.2.3.4"}}},
            "config.headers",
        ),
    ],
)
def test_credentials_in_urls_and_routing_headers_are_refused(client, auth, body, field):
    answer = client.post("/api/v1/jobs", json=body, headers=auth)
    payload = answer.get_json()
    assert answer.status_code == 422, payload
    assert field in payload["errors"], payload
    assert "s3cret" not in answer.get_data(as_text=True)


def test_literal_private_targets_answer_422_when_blocked(settings, redis_url):
    from api.app import create_app

    blocked = create_app(
        settings.with_(private_targets="block", target_allowlist="127.0.0.1:9")
    ).test_client()
    headers = register_user(blocked)
    for url in (
        "http://127.0.0.1:6379/",
        "http://[::1]:27117/",
        "http://localhost:8000/api/v1/health",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://10.0.0.1./",
    ):
        answer = blocked.post("/api/v1/jobs", json={"url": url}, headers=headers)
        body = answer.get_json()
        assert answer.status_code == 422, (url, body)
        assert "Blocked target" in body["errors"]["url"][0]
    hook = blocked.post(
        "/api/v1/jobs",
        json={"url": "http://127.0.0.1:9/", "webhook_url": "http://169.254.169.254/"},
        headers=headers,
    )
    assert hook.status_code == 422 and "webhook_url" in hook.get_json()["errors"]
    allowed = blocked.post("/api/v1/jobs", json={"url": "http://127.0.0.1:9/x"}, headers=headers)
    assert allowed.status_code == 201  # allow-listed host:port


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("[" * 1000 + "]" * 1000, "deeper than 32"),
        ("[" * 100_000 + "]" * 100_000, "deeper than 32"),
        ('{"url": "http://127.0.0.1:9/", "selectors": {"a": "h1\\ud800"}}', "surrogate"),
        ('{"url": "http://127.0.0.1:9/", "selectors": {"\\udfff": "h1"}}', "surrogate"),
        ('{"url": "http://127.0.0.1:9/", "config": {"max_pages": ' + "9" * 5000 + "}}", "number"),
    ],
)
def test_hostile_json_bodies_answer_400_in_the_error_shape(client, auth, raw, words):
    answer = client.post(
        "/api/v1/jobs", data=raw, headers={**auth, "Content-Type": "application/json"}
    )
    body = answer.get_json()
    assert answer.status_code == 400, body
    assert body["type"] == "validation_error" and words in body["detail"] and body["request_id"]


def test_a_json_body_is_decoded_once(client, auth, monkeypatch):
    # the guard's parse (with its limits) is the one the endpoint's arguments come from
    import json

    body = '{"url": "http://127.0.0.1:9/", "selectors": {"title": "h1::text"}}'
    real_loads = json.loads
    decoded: list[str] = []

    def counting_loads(text, *args, **kwargs):
        if text == body:
            decoded.append(text)
        return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counting_loads)
    answer = client.post(
        "/api/v1/jobs", data=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["selectors"] == {"title": "h1::text"}
    assert len(decoded) == 1


def test_nesting_within_the_limit_and_strings_with_brackets_are_fine(client, auth):
    from api.json_guard import MAX_DEPTH, nesting_depth

    assert nesting_depth(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', MAX_DEPTH) == 1
    assert nesting_depth(b'["\\"[[[", [[1]]]', MAX_DEPTH) == 3
    body = {"url": "http://127.0.0.1:9/", "selectors": {"t": "//a[contains(., '[{')]"}}
    assert client.post("/api/v1/jobs", json=body, headers=auth).status_code == 201


@pytest.mark.parametrize(
    "query",
    [
        "/jobs?page=9223372036854775808",
        "/jobs?skip=9223372036854775808",
        "/jobs?page=99999999999999999&per_page=100",
        "/results/x?skip=9223372036854775808",
    ],
)
def test_huge_paging_numbers_answer_422_not_500(client, auth, query):
    answer = client.get(f"/api/v1{query}", headers=auth)
    assert answer.status_code == 422, answer.get_json()


def test_repeated_failed_logins_lock_the_username_out_for_a_while(client):
    register_user(client, "mallory-target", password="right-password")
    other = register_user(client, "bystander", password="right-password")
    for _ in range(5):
        answer = client.post(
            "/api/v1/auth/login", json={"username": "mallory-target", "password": "guess"}
        )
        assert answer.status_code == 401
    locked = client.post(
        "/api/v1/auth/login", json={"username": "mallory-target", "password": "right-password"}
    )
    body = locked.get_json()
    assert locked.status_code == 429 and body["type"] == "rate_limited", body
    assert 1 <= int(locked.headers["Retry-After"]) <= 15 * 60
    # another account from the same client is not locked
    again = client.post(
        "/api/v1/auth/login", json={"username": "bystander", "password": "right-password"}
    )
    assert again.status_code == 200 and other


def test_too_many_failures_from_one_client_are_slowed_down(app, client):
    guard_settings = app.config["SETTINGS"]
    assert guard_settings.login_failure_limit_ip == "20 per 15 minutes"
    for index in range(20):
        client.post("/api/v1/auth/login", json={"username": f"nobody{index}", "password": "x"})
    answer = client.post("/api/v1/auth/login", json={"username": "someone-new", "password": "x"})
    assert answer.status_code == 429 and "Retry-After" in answer.headers


def test_answers_keep_the_order_fields_were_given_in(client, auth):
    selectors = {"zeta": "h1::text", "alpha": "h2::text", "mid": "p::text"}
    job = client.post("/api/v1/jobs", json={**GOOD, "selectors": selectors}, headers=auth)
    raw = client.get(f"/api/v1/jobs/{job.get_json()['id']}", headers=auth).get_data(as_text=True)
    assert raw.index('"zeta"') < raw.index('"alpha"') < raw.index('"mid"')


def test_an_export_link_carries_its_own_token(client, auth):
    job = client.post("/api/v1/jobs", json=GOOD, headers=auth).get_json()
    path = f"/api/v1/results/{job['id']}/export"
    token = auth["Authorization"].split()[1]
    linked = client.get(f"{path}?format=csv&token={token}")  # no header: a browser's download
    assert linked.status_code == 200 and linked.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in linked.headers["Content-Disposition"]
    assert linked.get_data(as_text=True) == "title,url,scraped_at\n"  # no items yet
    linked.close()  # a streamed answer holds its request until it is read and closed
    assert client.get(f"{path}?token=forged").status_code == 401
    assert client.get(path).status_code == 401
    stranger = register_user(client)["Authorization"].split()[1]
    assert client.get(f"{path}?token={stranger}").status_code == 404
