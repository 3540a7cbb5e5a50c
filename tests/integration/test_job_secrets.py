"""Secrets of jobs and schedules through the API: sealed at rest, answered as ***, kept when a
client sends *** back (PATCH, a schedule's new body) and across cancel, retry and reset."""

from __future__ import annotations

import json

from shared.vault import MASK, Vault

PASSWORD = "hunter2-secret-value"  # noqa: S105 - a test's own secret, searched for below
COOKIE = "cookie-secret-value"
TOKEN = "Bearer token-secret-value"  # noqa: S105


def body(**config) -> dict:
    return {
        "url": "http://127.0.0.1:9/members/",
        "engine": "scrapy",
        "config": {
            "login": {
                "url": "http://127.0.0.1:9/login",
                "fields": {"#user": "alice", "#password": PASSWORD},
                "success_selector": "a.logout",
            },
            "cookies": [{"name": "gate", "value": COOKIE}],
            "headers": {"authorization": TOKEN, "X-Shown": "visible"},
            **config,
        },
    }


def opened(db, settings, collection: str, doc_id: str, path=("config",)) -> dict:
    doc = db[collection].find_one({"_id": doc_id})
    text = json.dumps(doc, default=str)
    assert PASSWORD not in text and COOKIE not in text
    for key in path:
        doc = doc[key]
    return Vault.from_settings(settings).open_config(doc)


def test_job_secrets_are_sealed_answered_masked_and_kept_on_patch_retry_and_reset(
    client, auth, db, settings
):
    answer = client.post("/api/v1/jobs", json=body(), headers=auth)
    assert answer.status_code == 201, answer.get_json()
    job = answer.get_json()
    config = job["config"]
    assert config["login"]["fields"] == {"#user": MASK, "#password": MASK}
    assert config["cookies"][0]["value"] == MASK
    assert config["headers"] == {"authorization": MASK, "X-Shown": "visible"}
    assert db.jobs.find_one({"_id": job["id"]})["queue"] == "playwright"  # it logs in first
    stored = db.jobs.find_one({"_id": job["id"]})["config"]
    assert stored["login"]["fields"]["#password"].startswith("sealed:v1:")
    assert opened(db, settings, "jobs", job["id"])["login"]["fields"]["#password"] == PASSWORD

    # the answer sent back as it came keeps every secret; other options change
    changed = client.patch(
        f"/api/v1/jobs/{job['id']}",
        json={"config": {**config, "max_pages": 3}},
        headers=auth,
    )
    assert changed.status_code == 200, changed.get_json()
    plain = opened(db, settings, "jobs", job["id"])
    assert plain["login"]["fields"] == {"#user": "alice", "#password": PASSWORD}
    assert plain["cookies"][0]["value"] == COOKIE and plain["headers"]["authorization"] == TOKEN
    assert plain["max_pages"] == 3
    # a new value replaces one secret; the others stay
    fields = {"#user": MASK, "#password": "a-new-password"}
    changed = client.patch(
        f"/api/v1/jobs/{job['id']}",
        json={"config": {"login": {**config["login"], "fields": fields}}},
        headers=auth,
    )
    assert changed.status_code == 200, changed.get_json()
    plain = opened(db, settings, "jobs", job["id"])
    assert plain["login"]["fields"] == {"#user": "alice", "#password": "a-new-password"}
    # *** where nothing is stored is refused, naming the place
    refused = client.patch(
        f"/api/v1/jobs/{job['id']}",
        json={"config": {"cookies": [{"name": "other", "value": MASK}]}},
        headers=auth,
    )
    assert refused.status_code == 422
    assert "config.cookies[name='other'].value" in json.dumps(refused.get_json())

    sealed = db.jobs.find_one({"_id": job["id"]})["config"]
    for action in ("cancel", "retry", "cancel", "reset"):
        moved = client.post(f"/api/v1/jobs/{job['id']}/{action}", headers=auth)
        assert moved.status_code == 200, (action, moved.get_json())
        assert db.jobs.find_one({"_id": job["id"]})["config"] == sealed, action
    everything = json.dumps([client.get("/api/v1/jobs", headers=auth).get_json(), moved.get_json()])
    for secret in (PASSWORD, "a-new-password", COOKIE, TOKEN):
        assert secret not in everything


def test_login_input_is_checked_like_the_rest_of_a_job(client, auth):
    def refused(config: dict) -> dict:
        answer = client.post("/api/v1/jobs", json=body(**config), headers=auth)
        assert answer.status_code == 422, answer.get_json()
        return answer.get_json()["errors"]

    metadata = {"url": "http://169.254.169.254/login", "fields": {"#u": "x"}}
    assert "Blocked target" in json.dumps(refused({"login": metadata}))
    local_file = {"url": "file:///etc/passwd", "fields": {"#u": "x"}}
    assert "url" in json.dumps(refused({"login": local_file}))
    assert refused({"login": {"url": "http://127.0.0.1:9/", "fields": {"[[bad": "x"}}})
    assert refused({"cookies": [{"name": "a;b", "value": "x"}]})
    new_masked = refused({"cookies": [{"name": "gate", "value": MASK}]})
    assert "stands for a stored secret" in json.dumps(new_masked)


def test_schedule_secrets_are_masked_and_kept_when_its_body_comes_back(client, auth, db, settings):
    created = client.post(
        "/api/v1/schedules",
        json={"name": "nightly", "cron": "0 3 * * *", "job": body()},
        headers=auth,
    )
    assert created.status_code == 201, created.get_json()
    schedule = created.get_json()
    assert schedule["job"]["config"]["login"]["fields"]["#password"] == MASK
    db.schedules.update_one({"_id": schedule["id"]}, {"$set": {"session": {"state": "x"}}})
    job = {**schedule["job"], "config": {**schedule["job"]["config"], "max_pages": 7}}
    changed = client.patch(f"/api/v1/schedules/{schedule['id']}", json={"job": job}, headers=auth)
    assert changed.status_code == 200, changed.get_json()
    plain = opened(db, settings, "schedules", schedule["id"], ("job", "config"))
    assert plain["login"]["fields"]["#password"] == PASSWORD and plain["max_pages"] == 7
    assert db.schedules.find_one({"_id": schedule["id"]})["session"]  # same login: kept
    login = {**job["config"]["login"], "fields": {"#user": "bob", "#password": MASK}}
    job["config"] = {**job["config"], "login": login}
    changed = client.patch(f"/api/v1/schedules/{schedule['id']}", json={"job": job}, headers=auth)
    assert changed.status_code == 200, changed.get_json()
    assert "session" not in db.schedules.find_one({"_id": schedule["id"]})  # another account
    listed = json.dumps(client.get("/api/v1/schedules", headers=auth).get_json())
    assert PASSWORD not in listed and COOKIE not in listed and TOKEN not in listed
