"""A deactivated (or demoted) user is cut off, end to end: API, scheduler, a scrapy worker and a
webhook worker as real processes. Its open streams close, its schedule skips, its webhooks stop,
its queued jobs never start; activated again, its schedule runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from shared import accounts, tasks
from shared.jobs import now
from testing.helpers import Stack, wait_for
from testing.receiver import Receiver
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CUT_OFF_SECONDS = 5.0  # API.md: a deactivated user's streams … stop within 5 s


@pytest.fixture(scope="module")
def cut(redis_url, mongo_url, tmp_path_factory):
    stack = Stack(redis_url, mongo_url, f"de_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("de"))
    try:
        stack.start(
            api=True,
            queues=("scrapy",),
            ADMIN_USERNAME="root",
            ADMIN_PASSWORD="admin-pass-1",
            SCHEDULER_TICK_SECONDS="0.2",
            WEBHOOK_RETRY_BASE_SECONDS="6",
            WEBHOOK_TIMEOUT_SECONDS="2",
        )
        stack.start_worker("webhooks", concurrency=2)
        stack.start_scheduler()
        yield stack
    finally:
        stack.stop()


def patch_user(stack: Stack, admin: dict, uid: str, **changes) -> float:
    """PATCH /admin/users/{id}; the moment the API answered."""
    answer = requests.patch(
        stack.url(f"/admin/users/{uid}"), json=changes, headers=admin, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return time.monotonic()


def test_open_streams_of_a_deactivated_or_demoted_user_close_within_5_s(cut):
    from simple_websocket import Client, ConnectionClosed

    admin = cut.login("root", "admin-pass-1")
    user = cut.register()
    made = requests.post(
        cut.url("/admin/users"),
        json={
            "username": f"a{uuid.uuid4().hex[:8]}",
            "email": f"a{uuid.uuid4().hex[:8]}@example.test",
            "password": "second-admin",
            "role": "admin",
        },
        headers=admin,
        timeout=10,
    ).json()
    second_admin = cut.login(made["username"], "second-admin")
    opened = {name: threading.Event() for name in ("user", "demoted")}
    ended: dict[str, float] = {}

    def follow(name: str, headers: dict) -> None:
        with requests.get(cut.url("/events"), headers=headers, stream=True, timeout=60) as answer:
            assert answer.status_code == 200
            for _ in answer.iter_lines():
                opened[name].set()  # the stream's first line: it is open
        ended[name] = time.monotonic()

    readers = [
        threading.Thread(target=follow, args=("user", user), daemon=True),
        threading.Thread(target=follow, args=("demoted", second_admin), daemon=True),
    ]
    for reader in readers:
        reader.start()
    token = user["Authorization"].split()[1]
    ws = Client.connect(cut.url("/ws").replace("http://", "ws://") + f"?token={token}")
    for name, event in opened.items():
        assert event.wait(30), f"{name}'s stream did not open"

    deactivated = patch_user(cut, admin, cut.user_id(user), active=False)
    demoted = patch_user(cut, admin, made["id"], role="user")
    with pytest.raises(ConnectionClosed):
        while True:
            ws.receive(timeout=CUT_OFF_SECONDS + 5)
    ws_closed = time.monotonic()
    for reader in readers:
        reader.join(CUT_OFF_SECONDS + 10)
    assert ws.close_reason == 1008
    sse, demoted_sse = ended["user"] - deactivated, ended["demoted"] - demoted
    print(
        f"cut off after: websocket {ws_closed - deactivated:.2f} s, SSE {sse:.2f} s, "
        f"demoted admin's SSE {demoted_sse:.2f} s"
    )
    assert ws_closed - deactivated <= CUT_OFF_SECONDS
    assert ended["user"] - deactivated <= CUT_OFF_SECONDS
    assert ended["demoted"] - demoted <= CUT_OFF_SECONDS
    # and they cannot come back: the user is refused, the demoted admin is an ordinary user
    again = requests.get(cut.url("/events"), headers=user, stream=True, timeout=10)
    assert again.status_code == 401
    assert (
        requests.get(cut.url("/admin/users"), headers=second_admin, timeout=10).status_code == 403
    )


def test_a_deactivated_users_schedule_skips_and_runs_again_once_it_is_back(cut):
    admin = cut.login("root", "admin-pass-1")
    user = cut.register()
    uid = cut.user_id(user)
    database = cut.database()
    with SiteServer(pages=1) as site:
        schedule = requests.post(
            cut.url("/schedules"),
            json={
                "name": "every minute",
                "cron": "* * * * *",
                "job": {"url": site.url_for("/catalog/"), "engine": "scrapy"},
            },
            headers=user,
            timeout=10,
        ).json()
        sid = schedule["id"]

        def runs(status: str) -> list:
            page = requests.get(
                cut.url(f"/schedules/history?schedule_id={sid}&status={status}"),
                headers=admin,
                timeout=10,
            ).json()
            return page["runs"]

        patch_user(cut, admin, uid, active=False)
        # its next slot comes now rather than at the next minute
        database.schedules.update_one({"_id": sid}, {"$set": {"next_run": now()}})
        skipped = wait_for(lambda: runs("skipped"), 30, interval=0.2, message="a skipped run")
        assert skipped[0]["error"] == accounts.DEACTIVATED and skipped[0]["job_id"] is None
        assert database.jobs.count_documents({"schedule_id": sid}) == 0
        parked = requests.get(cut.url(f"/schedules/{sid}"), headers=admin, timeout=10).json()
        assert parked["next_run"] is None and parked["enabled"] is True

        patch_user(cut, admin, uid, active=True)
        # its credentials work again, and its schedule has a next run (from now on)
        resumed = requests.get(cut.url(f"/schedules/{sid}"), headers=user, timeout=10)
        assert resumed.status_code == 200 and resumed.json()["next_run"] is not None
        database.schedules.update_one({"_id": sid}, {"$set": {"next_run": now()}})
        done = wait_for(lambda: runs("completed"), 60, interval=0.2, message="a completed run")
        assert done[0]["items_scraped"] >= 0 and len(runs("skipped")) == 1


def test_a_deactivated_users_webhooks_stop_and_its_queued_jobs_are_cancelled(cut):
    admin = cut.login("root", "admin-pass-1")
    user = cut.register()
    receiver = Receiver(codes=[500] * 20)  # every delivery fails: its retry is due 6 s later
    database = cut.database()
    try:
        hook = requests.post(
            cut.url("/webhooks"),
            json={"webhook_url": receiver.url, "events": ["job.completed", "job.cancelled"]},
            headers=user,
            timeout=10,
        ).json()
        with SiteServer(pages=1) as site:
            done = cut.submit(user, url=site.url_for("/catalog/"), engine="scrapy")
            cut.wait_job(done["id"], user)
        wait_for(lambda: receiver.calls, 30, message="the first delivery")
        # no playwright worker runs here: this one stays pending
        queued = cut.submit(user, url="http://127.0.0.1:9/", engine="playwright")
        patch_user(cut, admin, cut.user_id(user), active=False)

        cancelled = requests.get(cut.url(f"/jobs/{queued['id']}"), headers=admin, timeout=10)
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["error"]["type"] == "account_deactivated"

        def refused_retry() -> dict | None:
            found = database.webhook_deliveries.find_one({"webhook_id": hook["id"], "attempt": 2})
            return found if found and found["state"] == "failed" else None

        retry = wait_for(refused_retry, 30, interval=0.2, message="the retry refused")
        assert retry["error"] == f"not sent: {accounts.DEACTIVATED}"
        assert retry["status_code"] is None
        assert len(receiver.calls) == 1  # the first attempt only: nothing after deactivation
        assert database.webhook_deliveries.count_documents({"event": "job.cancelled"}) == 0
    finally:
        receiver.close()


def test_a_worker_does_not_start_a_queued_job_of_a_deactivated_user(cut):
    user = cut.register()
    database = cut.database()
    job = cut.submit(user, url="http://127.0.0.1:9/", engine="playwright")  # stays pending
    # deactivated behind the API's back (as if its cancel had missed this job): the worker
    # must still refuse to start it
    database.users.update_one({"_id": cut.user_id(user)}, {"$set": {"active": False}})
    database.jobs.update_one({"_id": job["id"]}, {"$set": {"queue": tasks.QUEUE_SCRAPY}})
    stored = database.jobs.find_one({"_id": job["id"]})
    cut.celery().send_task(tasks.SCRAPE, **tasks.scrape_options(stored))

    def ended() -> dict | None:
        found = database.jobs.find_one({"_id": job["id"]})
        return found if found["status"] != "pending" else None

    final = wait_for(ended, 30, interval=0.2, message="the job handled by the worker")
    assert final["status"] == "cancelled" and final["started_at"] is None
    assert final["error"] == accounts.DEACTIVATED_ERROR
    # the log line is written just after the status (the job's own write comes first)
    wait_for(
        lambda: database.logs.find_one(
            {"job_id": job["id"], "message": f"cancelled, not started: {accounts.DEACTIVATED}"}
        ),
        10,
        message="the refusal in the job's log",
    )


def cli(*args: str, env: dict[str, str], stdin: str | None = None):
    """The `scrapemaster` command as a user runs it (a subprocess)."""
    return subprocess.run(
        [sys.executable, "-m", "scrapemaster.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_admin_manages_users_from_the_command_line(cut, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPEMASTER_")}
    env.update(SCRAPEMASTER_API=cut.base, XDG_CONFIG_HOME=str(tmp_path), COLUMNS="200")
    logged = cli("login", "-u", "root", "--password-stdin", env=env, stdin="admin-pass-1\n")
    assert logged.returncode == 0, logged.stderr
    name = f"Made{uuid.uuid4().hex[:6]}"
    made = cli("users", "create", name, "--email", f"{name}@example.test", "--role", "deployer",
               "--password-stdin", "--json", env=env, stdin="made-by-cli\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["role"] == "deployer" and created["email"] == f"{name.lower()}@example.test"
    listed = json.loads(cli("users", "list", "--q", name.upper(), "--json", env=env).stdout)
    assert listed["total"] == 1 and listed["users"][0]["id"] == created["id"]
    assert created["id"] in cli("users", "list", env=env).stdout
    off = cli("users", "update", created["id"], "--inactive", env=env)
    assert off.returncode == 0 and "inactive" in off.stdout, off.stderr
    refused = requests.post(
        cut.url("/auth/login"), json={"username": name, "password": "made-by-cli"}, timeout=10
    )
    assert refused.status_code == 401
    assert cli("users", "update", created["id"], env=env).returncode == 2  # nothing to change
    # an ordinary user is refused: exit 4, one line
    user = cut.register()
    as_user = {**env, "SCRAPEMASTER_TOKEN": user["Authorization"].split()[1]}
    denied = cli("users", "list", env=as_user)
    assert denied.returncode == 4 and "403" in denied.stderr
    assert len(denied.stderr.splitlines()) == 1
