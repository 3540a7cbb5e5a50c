"""Accounts: names unique in any case, login limits per account and per client, closed
registration, the admin's user management, and what a deactivated user loses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.app import create_app
from shared import jobs
from shared.db import ensure_indexes
from shared.schedules import SKIPPED, ScheduleRepository
from shared.scheduling import Scheduler
from shared.settings import Settings
from testing.helpers import register_user

pytestmark = pytest.mark.integration

ADMIN = {"admin_username": "root", "admin_password": "admin-pass-1"}


@pytest.fixture
def admin_app(settings):
    return create_app(settings.with_(**ADMIN))


@pytest.fixture
def admin_client(admin_app):
    return admin_app.test_client()


def login(client, name: str, password: str):
    return client.post("/api/v1/auth/login", json={"username": name, "password": password})


def bearer(answer) -> dict:
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}


@pytest.fixture
def admin(admin_client) -> dict:
    return bearer(login(admin_client, "root", "admin-pass-1"))


def register(client, username: str, email: str, password: str = "s3cret-pass"):
    body = {"username": username, "email": email, "password": password}
    return client.post("/api/v1/auth/register", json=body)


# -- names -------------------------------------------------------------------------------


def test_a_username_differing_only_in_case_is_taken_and_any_spelling_logs_in(client):
    assert register(client, "secadmin", "sec@example.test").status_code == 201
    taken = register(client, "SecAdmin", "other@example.test")
    assert taken.status_code == 409 and taken.get_json()["errors"] == {
        "username": ["already taken"]
    }
    email = register(client, "someone", "SEC@Example.TEST")
    assert email.status_code == 409 and "email" in email.get_json()["errors"]
    for typed in ("secadmin", "SecAdmin", "SECADMIN", "sec@example.test", "Sec@EXAMPLE.test"):
        answer = login(client, typed, "s3cret-pass")
        assert answer.status_code == 200, typed
        assert answer.get_json()["user"]["username"] == "secadmin"


def test_an_existing_store_is_migrated_at_start_up(db):
    created = jobs.now()
    db.users.drop_indexes()
    for offset, (name, email) in enumerate(
        [("Bob", "Bob@Example.test"), ("bob", "bob2@example.test"), ("carol", "carol@x.test")]
    ):
        db.users.insert_one(
            {
                "_id": f"u{offset}",
                "username": name,
                "email": email,
                "password_hash": "x",
                "role": "user",
                "active": True,
                "created_at": created + timedelta(seconds=offset),
            }
        )
    ensure_indexes(db)
    ensure_indexes(db)  # idempotent
    keys = {u["_id"]: (u["username_key"], u["email"]) for u in db.users.find()}
    assert keys == {
        "u0": ("bob", "bob@example.test"),  # the oldest keeps the name
        "u1": ("bob#u1", "bob2@example.test"),  # a clash keeps its exact spelling only
        "u2": ("carol", "carol@x.test"),
    }
    from shared.accounts import find_by_login

    assert find_by_login(db, "BOB")["_id"] == "u0"
    assert find_by_login(db, "bob")["_id"] == "u0"  # the key wins over the clashing spelling
    assert find_by_login(db, "bob2@EXAMPLE.test")["_id"] == "u1"
    assert find_by_login(db, "CAROL")["_id"] == "u2"


# -- login limits ------------------------------------------------------------------------


def test_the_e_mail_gives_no_more_guesses_than_the_username(client):
    assert register(client, "victim", "victim@example.test").status_code == 201
    for typed in ("victim", "VICTIM", "victim@example.test", "Victim", "VICTIM@example.test"):
        assert login(client, typed, "wrong-guess").status_code == 401
    for typed in ("victim@example.test", "victim"):
        locked = login(client, typed, "s3cret-pass")
        assert locked.status_code == 429 and locked.get_json()["type"] == "rate_limited"
        assert 1 <= int(locked.headers["Retry-After"]) <= 15 * 60


def test_many_failures_on_one_account_do_not_lock_out_the_others_behind_the_address(client):
    assert register(client, "target", "target@example.test").status_code == 201
    assert register(client, "neighbour", "neighbour@example.test").status_code == 201
    answers = [login(client, "target", f"guess-{n}").status_code for n in range(25)]
    assert answers[:5] == [401] * 5 and set(answers[5:]) == {429}
    assert login(client, "neighbour", "s3cret-pass").status_code == 200
    assert login(client, "neighbour@example.test", "s3cret-pass").status_code == 200


def test_a_client_spraying_many_accounts_is_stopped_on_new_ones(client):
    for n in range(20):  # one wrong password on each of 20 accounts (real or not)
        assert login(client, f"sprayed{n}", "Summer2026!").status_code == 401
    stopped = login(client, "sprayed-next", "Summer2026!")
    assert stopped.status_code == 429 and "Retry-After" in stopped.headers
    # an account it already tried stays under that account's own limit
    assert login(client, "sprayed0", "Summer2026!").status_code == 401


# -- registration ------------------------------------------------------------------------


def test_registration_is_closed_by_default_outside_local_modes():
    assert Settings(env="test").registration_open
    assert Settings(env="local").registration_open
    assert not Settings(env="production", mongo_url="mongodb://db").registration_open
    assert Settings(env="production", registration="open").registration_open
    assert not Settings(env="test", registration="closed").registration_open
    from shared.settings import SettingsError

    with pytest.raises(SettingsError, match="REGISTRATION"):
        Settings.from_env({"REGISTRATION": "maybe"})


def test_closed_registration_answers_403_and_an_admin_creates_accounts(settings):
    app = create_app(settings.with_(registration="closed", **ADMIN))
    client = app.test_client()
    refused = register(client, "walk-in", "walk-in@example.test")
    body = refused.get_json()
    assert refused.status_code == 403 and body["type"] == "forbidden" and body["request_id"]
    admin = bearer(login(client, "root", "admin-pass-1"))
    made = client.post(
        "/api/v1/admin/users",
        json={
            "username": "Invited",
            "email": "Invited@Example.test",
            "password": "long-enough",
            "role": "deployer",
        },
        headers=admin,
    )
    assert made.status_code == 201, made.get_json()
    user = made.get_json()
    assert user["role"] == "deployer" and user["active"] is True
    assert user["email"] == "invited@example.test" and "password" not in user
    assert login(client, "invited", "long-enough").status_code == 200
    again = client.post(
        "/api/v1/admin/users",
        json={"username": "INVITED", "email": "x@example.test", "password": "long-enough"},
        headers=admin,
    )
    assert again.status_code == 409


# -- the admin's user management ---------------------------------------------------------


def test_admins_list_search_and_page_users_and_others_get_403(admin_client, admin):
    for name in ("alpha-one", "Alpha-Two", "beta"):
        assert register(admin_client, name, f"{name.lower()}@example.test").status_code == 201
    user = bearer(login(admin_client, "beta", "s3cret-pass"))
    everyone = admin_client.get("/api/v1/admin/users", headers=admin).get_json()
    assert everyone["total"] == 4 and len(everyone["users"]) == 4
    assert [u["username"] for u in everyone["users"]][:3] == ["beta", "Alpha-Two", "alpha-one"]
    first = everyone["users"][0]
    assert set(first) == {
        "id",
        "username",
        "email",
        "role",
        "active",
        "created_at",
        "last_login",
        "quotas",  # in force (issue 25)
        "usage",  # this month's
    }
    found = admin_client.get("/api/v1/admin/users?q=ALPHA&limit=1&skip=1", headers=admin)
    page = found.get_json()
    assert page["total"] == 2 and [u["username"] for u in page["users"]] == ["alpha-one"]
    assert admin_client.get("/api/v1/admin/users?q=.*", headers=admin).get_json()["total"] == 0
    for method, path in (
        ("GET", "/api/v1/admin/users"),
        ("POST", "/api/v1/admin/users"),
        ("PATCH", f"/api/v1/admin/users/{first['id']}"),
    ):
        answer = admin_client.open(path, method=method, json={"role": "admin"}, headers=user)
        assert answer.status_code == 403 and answer.get_json()["type"] == "forbidden"


def test_patch_changes_role_and_active_and_refuses_bad_input(admin_client, admin):
    register(admin_client, "promoted", "promoted@example.test")
    users = admin_client.get("/api/v1/admin/users?q=promoted", headers=admin).get_json()["users"]
    path = f"/api/v1/admin/users/{users[0]['id']}"
    answer = admin_client.patch(path, json={"role": "admin"}, headers=admin)
    assert answer.status_code == 200 and answer.get_json()["role"] == "admin"
    promoted = bearer(login(admin_client, "promoted", "s3cret-pass"))
    assert admin_client.get("/api/v1/admin/users", headers=promoted).status_code == 200
    assert admin_client.patch(path, json={"role": "user"}, headers=admin).status_code == 200
    assert admin_client.get("/api/v1/admin/users", headers=promoted).status_code == 403
    for bad in ({"role": "owner"}, {"active": "perhaps"}, {"quotas": {"pages_per_month": -1}}):
        refused = admin_client.patch(path, json=bad, headers=admin)
        assert refused.status_code == 422 and refused.get_json()["type"] == "validation_error"
    missing = admin_client.patch(
        "/api/v1/admin/users/nobody", json={"active": False}, headers=admin
    )
    assert missing.status_code == 404


def test_the_last_active_admin_cannot_demote_or_deactivate_itself(admin_client, admin):
    me = admin_client.get("/api/v1/auth/me", headers=admin).get_json()
    path = f"/api/v1/admin/users/{me['id']}"
    for change in ({"active": False}, {"role": "user"}):
        refused = admin_client.patch(path, json=change, headers=admin)
        assert refused.status_code == 409 and refused.get_json()["type"] == "conflict"
    assert admin_client.get("/api/v1/admin/users", headers=admin).status_code == 200


# -- deactivation ------------------------------------------------------------------------


def test_a_deactivated_user_loses_tokens_keys_jobs_and_schedules_and_gets_them_back(
    admin_client, admin, db
):
    headers = register_user(admin_client, "leaver")
    key = admin_client.post("/api/v1/auth/api-keys", json={"name": "k"}, headers=headers)
    by_key = {"X-API-Key": key.get_json()["key"]}
    refresh = login(admin_client, "leaver", "s3cret-pass").get_json()["refresh_token"]
    # no worker consumes the queue here: the job stays pending
    job = admin_client.post(
        "/api/v1/jobs", json={"url": "http://127.0.0.1:9/"}, headers=headers
    ).get_json()
    schedule = admin_client.post(
        "/api/v1/schedules",
        json={"name": "every minute", "cron": "* * * * *", "job": {"url": "http://127.0.0.1:9/"}},
        headers=headers,
    ).get_json()
    me = admin_client.get("/api/v1/auth/me", headers=headers).get_json()
    path = f"/api/v1/admin/users/{me['id']}"

    off = admin_client.patch(path, json={"active": False}, headers=admin)
    assert off.status_code == 200 and off.get_json()["active"] is False
    for creds in (headers, by_key):
        assert admin_client.get("/api/v1/jobs", headers=creds).status_code == 401
    assert (
        admin_client.post("/api/v1/auth/refresh", json={"refresh_token": refresh}).status_code
        == 401
    )
    assert login(admin_client, "leaver", "s3cret-pass").status_code == 401
    cancelled = admin_client.get(f"/api/v1/jobs/{job['id']}", headers=admin).get_json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"]["type"] == "account_deactivated"
    listed = admin_client.get("/api/v1/admin/users?q=leaver", headers=admin).get_json()
    assert listed["users"][0]["active"] is False

    # the scheduler skips its due slot, saying why, and starts nothing until it is back
    started: list = []
    scheduler = Scheduler(db, started.append)
    now = jobs.now()
    db.schedules.update_one({"_id": schedule["id"]}, {"$set": {"next_run": now}})
    assert scheduler.tick()[SKIPPED] == 1 and started == []
    runs = list(db.schedule_runs.find({"schedule_id": schedule["id"]}))
    assert [(r["status"], r["error"], r["job_id"]) for r in runs] == [
        (SKIPPED, "the owner's account is deactivated", None)
    ]
    assert db.schedules.find_one({"_id": schedule["id"]})["next_run"] is None
    refused = admin_client.post(f"/api/v1/schedules/{schedule['id']}/run", headers=admin)
    assert refused.status_code == 409

    on = admin_client.patch(path, json={"active": True}, headers=admin)
    assert on.status_code == 200 and on.get_json()["active"] is True
    resumed = ScheduleRepository(db).get(schedule["id"])
    assert resumed["next_run"] is not None and resumed["suspended"] is None
    assert resumed["next_run"].replace(tzinfo=now.tzinfo) > now
    again = bearer(login(admin_client, "leaver", "s3cret-pass"))
    assert admin_client.get("/api/v1/jobs", headers=again).status_code == 200
    assert admin_client.get("/api/v1/jobs", headers=by_key).status_code == 200
