"""The Scrapyd-compatible API under /scrapyd/: basic auth, roles, per-owner projects, Scrapyd's
answer and error shapes, and spider jobs made by schedule.json as POST /jobs makes them."""

from __future__ import annotations

import base64
import io
import uuid

import pytest

from api.app import create_app
from testing.spider_eggs import demo_egg

pytestmark = pytest.mark.integration

ADMIN = {"admin_username": "root", "admin_password": "admin-pass-1"}
PASSWORD = "s3cret-pass"


def basic(name: str, secret: str) -> dict:
    token = base64.b64encode(f"{name}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def egg() -> bytes:
    """The test Scrapy project (testing/spider_project) built into an egg once."""
    return demo_egg()


@pytest.fixture
def client(settings):
    return create_app(settings.with_(**ADMIN)).test_client()


def _user(client, role: str = "user") -> dict:
    """A registered user with `role` (set by the admin API): name and basic auth headers."""
    name = f"u{uuid.uuid4().hex[:10]}"
    made = client.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.test", "password": PASSWORD},
    )
    assert made.status_code == 201, made.get_json()
    if role != "user":
        root = client.post(
            "/api/v1/auth/login", json={"username": "root", "password": "admin-pass-1"}
        ).get_json()["access_token"]
        changed = client.patch(
            f"/api/v1/admin/users/{made.get_json()['id']}",
            json={"role": role},
            headers={"Authorization": f"Bearer {root}"},
        )
        assert changed.status_code == 200, changed.get_json()
    return {"name": name, "id": made.get_json()["id"], "auth": basic(name, PASSWORD)}


@pytest.fixture
def deployer(client) -> dict:
    return _user(client, "deployer")


def deploy(client, who: dict, egg: bytes, project: str = "demo", version: str = "1"):
    return client.post(
        "/scrapyd/addversion.json",
        data={"project": project, "version": version, "egg": (io.BytesIO(egg), "project.egg")},
        headers=who["auth"],
        content_type="multipart/form-data",
    )


def ok(answer) -> dict:
    body = answer.get_json()
    assert answer.status_code == 200 and body["status"] == "ok", body
    assert body["node_name"]
    return body


def scrapyd_error(answer, status: int) -> str:
    body = answer.get_json()
    assert answer.status_code == status, body
    assert set(body) == {"status", "message", "node_name"}, body
    assert body["status"] == "error"
    return body["message"]


def test_without_credentials_the_answer_is_401_with_a_basic_challenge(client):
    answer = client.get("/scrapyd/daemonstatus.json")
    assert "authentication required" in scrapyd_error(answer, 401).lower()
    assert answer.headers["WWW-Authenticate"].startswith("Basic ")


def test_wrong_password_is_401_and_counts_toward_the_login_lockout(client, deployer):
    wrong = basic(deployer["name"], "not-the-password")
    for _ in range(5):  # LOGIN_FAILURE_LIMIT_USER: 5 per 15 minutes
        answer = client.get("/scrapyd/listprojects.json", headers=wrong)
        assert "Incorrect username or password" in scrapyd_error(answer, 401)
        assert answer.headers["WWW-Authenticate"].startswith("Basic ")
    locked = client.get("/scrapyd/listprojects.json", headers=wrong)
    assert "Too many failed logins" in scrapyd_error(locked, 429)
    assert int(locked.headers["Retry-After"]) > 0


def test_an_api_key_works_as_the_password_only_with_its_own_username(client, deployer):
    token = client.post(
        "/api/v1/auth/login", json={"username": deployer["name"], "password": PASSWORD}
    ).get_json()["access_token"]
    key = client.post(
        "/api/v1/auth/api-keys",
        json={"name": "deploy"},
        headers={"Authorization": f"Bearer {token}"},
    ).get_json()["key"]
    assert ok(client.get("/scrapyd/listprojects.json", headers=basic(deployer["name"], key)))
    upper = basic(deployer["name"].upper(), key)  # usernames in any case
    assert ok(client.get("/scrapyd/listprojects.json", headers=upper))
    other = _user(client)
    refused = client.get("/scrapyd/listprojects.json", headers=basic(other["name"], key))
    assert "another user" in scrapyd_error(refused, 401)


def test_daemonstatus_counts_the_callers_spider_jobs(client, deployer):
    body = ok(client.get("/scrapyd/daemonstatus.json", headers=deployer["auth"]))
    assert {k: body[k] for k in ("pending", "running", "finished")} == {
        "pending": 0,
        "running": 0,
        "finished": 0,
    }


def test_shapes_of_wrong_method_unknown_endpoint_and_missing_parameter(client, deployer):
    wrong = client.get("/scrapyd/schedule.json", headers=deployer["auth"])
    assert "use POST" in scrapyd_error(wrong, 405)
    assert wrong.headers["Allow"] == "OPTIONS, HEAD, POST"
    assert "no such endpoint" in scrapyd_error(
        client.get("/scrapyd/nothing.json", headers=deployer["auth"]), 404
    )
    missing = client.get("/scrapyd/listversions.json", headers=deployer["auth"])
    assert scrapyd_error(missing, 400) == "'project' parameter is required"
    # the rest of the API keeps its own error shape
    assert client.get("/api/v1/jobs").get_json()["type"] == "unauthorized"


def test_deploying_needs_the_deployer_or_admin_role(client, egg):
    plain = _user(client)
    message = scrapyd_error(deploy(client, plain, egg), 403)
    assert "deployer" in message
    for path in ("delversion", "delproject"):
        answer = client.post(
            f"/scrapyd/{path}.json", data={"project": "demo", "version": "1"}, headers=plain["auth"]
        )
        assert "deployer" in scrapyd_error(answer, 403)


def test_an_egg_that_is_not_a_zip_is_refused_as_scrapyd_says(client, deployer):
    answer = deploy(client, deployer, b"not a zip")
    assert "egg is not a ZIP file" in scrapyd_error(answer, 400)
    assert ok(client.get("/scrapyd/listprojects.json", headers=deployer["auth"]))["projects"] == []


def test_bad_project_names_are_refused(client, deployer, egg):
    assert "invalid" in scrapyd_error(deploy(client, deployer, egg, project="../p"), 400)


def test_deploy_list_schedule_status_cancel_and_listjobs(client, deployer, egg):
    who = deployer["auth"]
    added = ok(deploy(client, deployer, egg, version="r1"))
    assert added["project"] == "demo" and added["version"] == "r1" and added["spiders"] >= 2
    ok(deploy(client, deployer, egg, version="r2"))
    assert ok(client.get("/scrapyd/listprojects.json", headers=who))["projects"] == ["demo"]
    versions = ok(client.get("/scrapyd/listversions.json?project=demo", headers=who))
    assert versions["versions"] == ["r1", "r2"]
    spiders = ok(client.get("/scrapyd/listspiders.json?project=demo", headers=who))["spiders"]
    assert len(spiders) == added["spiders"]
    name = spiders[0]

    scheduled = ok(
        client.post(
            "/scrapyd/schedule.json",
            data={
                "project": "demo",
                "spider": name,
                "_version": "r1",
                "priority": "2",
                "setting": ["DOWNLOAD_DELAY=0.5", "USER_AGENT=tests=yes"],
                "category": "books",
            },
            headers=who,
        )
    )
    job_id = scheduled["jobid"]
    # the job is a ScrapeMaster job, with the spider as it was asked for
    token = client.post(
        "/api/v1/auth/login", json={"username": deployer["name"], "password": PASSWORD}
    ).get_json()["access_token"]
    job = client.get(f"/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"})
    job = job.get_json()
    assert job["engine"] == "spider" and job["status"] == "pending" and job["priority"] == 7
    assert job["spider"]["project"] == "demo" and job["spider"]["version"] == "r1"
    assert job["spider"]["name"] == name and job["spider"]["args"] == {"category": "books"}
    assert job["spider"]["settings"] == {"DOWNLOAD_DELAY": "0.5", "USER_AGENT": "tests=yes"}

    listed = ok(client.get("/scrapyd/listjobs.json?project=demo", headers=who))
    assert listed["running"] == [] and listed["finished"] == []
    assert listed["pending"] == [
        {
            "id": job_id,
            "project": "demo",
            "spider": name,
            "version": "r1",
            "settings": {"DOWNLOAD_DELAY": "0.5", "USER_AGENT": "tests=yes"},
            "args": {"category": "books"},
        }
    ]
    state = ok(client.get(f"/scrapyd/status.json?job={job_id}", headers=who))
    assert state["currstate"] == "pending"

    cancelled = ok(
        client.post("/scrapyd/cancel.json", data={"project": "demo", "job": job_id}, headers=who)
    )
    assert cancelled["prevstate"] == "pending"
    again = ok(
        client.post("/scrapyd/cancel.json", data={"project": "demo", "job": job_id}, headers=who)
    )
    assert again["prevstate"] is None
    listed = ok(client.get("/scrapyd/listjobs.json", headers=who))
    assert listed["pending"] == []
    (finished,) = listed["finished"]
    assert finished["id"] == job_id and finished["spider"] == name and finished["end_time"]
    assert finished["start_time"] and finished["items_url"] == f"/api/v1/results/{job_id}"
    state = ok(client.get(f"/scrapyd/status.json?job={job_id}&project=demo", headers=who))
    assert state["currstate"] == "finished"
    assert ok(client.get("/scrapyd/daemonstatus.json", headers=who))["finished"] == 1

    # without _version: the newest; a chosen jobid is the job's id, once
    mine = ok(
        client.post(
            "/scrapyd/schedule.json",
            data={"project": "demo", "spider": name, "jobid": "nightly-1"},
            headers=who,
        )
    )
    assert mine["jobid"] == "nightly-1"
    pending = ok(client.get("/scrapyd/listjobs.json", headers=who))["pending"]
    assert [(j["id"], j["version"]) for j in pending] == [("nightly-1", "r2")]
    taken = client.post(
        "/scrapyd/schedule.json",
        data={"project": "demo", "spider": name, "jobid": "nightly-1"},
        headers=who,
    )
    assert "already exists" in scrapyd_error(taken, 409)


def test_schedule_errors_as_scrapyd_words_them(client, deployer, egg):
    who = deployer["auth"]
    ok(deploy(client, deployer, egg))

    def schedule(**data):
        return client.post("/scrapyd/schedule.json", data=data, headers=who)

    assert scrapyd_error(schedule(project="nope", spider="x"), 404) == "project 'nope' not found"
    assert scrapyd_error(schedule(project="demo", spider="x"), 404) == "spider 'x' not found"
    missing = schedule(project="demo", spider="x", _version="9")
    assert scrapyd_error(missing, 404) == "version '9' not found"
    assert scrapyd_error(schedule(project="demo"), 400) == "'spider' parameter is required"
    bad = schedule(project="demo", spider="x", setting="NO_EQUALS_SIGN")
    assert "setting=NAME=VALUE" in scrapyd_error(bad, 400)


def test_another_users_projects_and_jobs_are_invisible(client, deployer, egg):
    ok(deploy(client, deployer, egg))
    name = ok(client.get("/scrapyd/listspiders.json?project=demo", headers=deployer["auth"]))[
        "spiders"
    ][0]
    job_id = ok(
        client.post(
            "/scrapyd/schedule.json",
            data={"project": "demo", "spider": name},
            headers=deployer["auth"],
        )
    )["jobid"]
    other = _user(client, "deployer")
    theirs = other["auth"]
    assert ok(client.get("/scrapyd/listprojects.json", headers=theirs))["projects"] == []
    assert (
        ok(client.get("/scrapyd/listversions.json?project=demo", headers=theirs))["versions"] == []
    )
    listed = client.get("/scrapyd/listspiders.json?project=demo", headers=theirs)
    assert scrapyd_error(listed, 404) == "project 'demo' not found"
    ran = client.post(
        "/scrapyd/schedule.json", data={"project": "demo", "spider": name}, headers=theirs
    )
    assert scrapyd_error(ran, 404) == "project 'demo' not found"
    assert ok(client.get(f"/scrapyd/status.json?job={job_id}", headers=theirs))["currstate"] is None
    assert ok(client.get("/scrapyd/listjobs.json", headers=theirs))["pending"] == []
    removed = client.post("/scrapyd/delproject.json", data={"project": "demo"}, headers=theirs)
    assert scrapyd_error(removed, 404) == "project 'demo' not found"
    # the same name is theirs to use: projects are per owner
    ok(deploy(client, other, egg, version="mine"))
    assert ok(client.get("/scrapyd/listversions.json?project=demo", headers=theirs))[
        "versions"
    ] == ["mine"]
    assert ok(client.get("/scrapyd/listversions.json?project=demo", headers=deployer["auth"]))[
        "versions"
    ] == ["1"]


def test_delversion_and_delproject(client, deployer, egg):
    who = deployer["auth"]
    ok(deploy(client, deployer, egg, version="a"))
    ok(deploy(client, deployer, egg, version="b"))
    gone = client.post(
        "/scrapyd/delversion.json", data={"project": "demo", "version": "zz"}, headers=who
    )
    assert scrapyd_error(gone, 404) == "version 'zz' not found"
    ok(
        client.post(
            "/scrapyd/delversion.json", data={"project": "demo", "version": "a"}, headers=who
        )
    )
    assert ok(client.get("/scrapyd/listversions.json?project=demo", headers=who))["versions"] == [
        "b"
    ]
    ok(client.post("/scrapyd/delproject.json", data={"project": "demo"}, headers=who))
    assert ok(client.get("/scrapyd/listprojects.json", headers=who))["projects"] == []


def test_the_dashboard_token_works_on_the_scrapyd_paths_without_a_basic_challenge(client, deployer):
    token = client.post(
        "/api/v1/auth/login", json={"username": deployer["name"], "password": PASSWORD}
    ).get_json()["access_token"]
    assert (
        ok(client.get("/scrapyd/listprojects.json", headers={"Authorization": f"Bearer {token}"}))[
            "projects"
        ]
        == []
    )
    refused = client.get("/scrapyd/listprojects.json", headers={"Authorization": "Bearer junk"})
    scrapyd_error(refused, 401)
    assert "WWW-Authenticate" not in refused.headers


def test_a_schedule_runs_a_spider_job(client, deployer, egg):
    ok(deploy(client, deployer, egg))
    name = ok(client.get("/scrapyd/listspiders.json?project=demo", headers=deployer["auth"]))[
        "spiders"
    ][0]
    token = client.post(
        "/api/v1/auth/login", json={"username": deployer["name"], "password": PASSWORD}
    ).get_json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    spider = {"project": "demo", "version": "1", "name": name, "args": {"a": "1"}, "settings": {}}
    made = client.post(
        "/api/v1/schedules",
        json={
            "name": "nightly spider",
            "cron": "0 3 * * *",
            "job": {"engine": "spider", "spider": spider},
        },
        headers=bearer,
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["job"]["spider"] == spider
    run = client.post(f"/api/v1/schedules/{made.get_json()['id']}/run", headers=bearer)
    assert run.status_code in (200, 201, 202), run.get_json()
    job = client.get(f"/api/v1/jobs/{run.get_json()['job_id']}", headers=bearer).get_json()
    assert job["engine"] == "spider" and job["spider"]["name"] == name
    assert job["spider"]["args"] == {"a": "1"}


def test_the_scrapyd_paths_stay_out_of_the_openapi_document(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert not [path for path in paths if "scrapyd" in path]
