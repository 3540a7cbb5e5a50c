"""scrapyd-client, unchanged, against a real API: `scrapyd-deploy` uploads the test Scrapy project
(testing/spider_project) to /scrapyd/, and Scrapyd's JSON API schedules, lists and cancels its
spiders as ScrapeMaster jobs; roles, wrong passwords and other users' projects as a user meets
them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from testing.helpers import Stack, wait_for
from testing.sites.server import SiteServer
from testing.spider_eggs import PROJECT, SPIDERS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
DEPLOY = Path(sys.executable).with_name("scrapyd-deploy")
ADMIN = ("root", "admin-pass-1")
PASSWORD = "s3cret-pass"


@pytest.fixture(scope="module")
def stack(redis_url, mongo_url, tmp_path_factory):
    s = Stack(redis_url, mongo_url, f"e2e_{uuid.uuid4().hex[:12]}", tmp_path_factory.mktemp("s"))
    try:
        s.start(
            api=True,
            queues=("spiders",),
            ADMIN_USERNAME=ADMIN[0],
            ADMIN_PASSWORD=ADMIN[1],
        )
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def site():
    with SiteServer(pages=3, items_per_page=5) as server:
        yield server


def user(stack: Stack, role: str = "user") -> tuple[str, str]:
    """A new account with `role` (the admin's PATCH); its name and password."""
    name = f"d{uuid.uuid4().hex[:8]}"
    stack.register(name, PASSWORD)
    if role != "user":
        admin = requests.post(
            stack.url("/auth/login"), data={"username": ADMIN[0], "password": ADMIN[1]}, timeout=10
        ).json()["access_token"]
        bearer = {"Authorization": f"Bearer {admin}"}
        found = requests.get(stack.url(f"/admin/users?q={name}"), headers=bearer, timeout=10)
        (row,) = found.json()["users"]
        changed = requests.patch(
            stack.url(f"/admin/users/{row['id']}"), json={"role": role}, headers=bearer, timeout=10
        )
        assert changed.status_code == 200, changed.text
    return name, PASSWORD


def scrapyd(stack: Stack, who: tuple[str, str], method: str, name: str, **params):
    where = "params" if method == "get" else "data"
    return getattr(requests, method)(
        f"{stack.base}/scrapyd/{name}.json", auth=who, timeout=30, **{where: params}
    )


def deploy(stack: Stack, who: tuple[str, str], workdir: Path, version: str = "1.0"):
    """`scrapyd-deploy -v VERSION` in a copy of the test project, its scrapy.cfg pointing here."""
    project = workdir / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    (project / "scrapy.cfg").write_text(
        "[settings]\ndefault = demo_spiders.settings\n\n"
        f"[deploy]\nurl = {stack.base}/scrapyd/\nusername = {who[0]}\npassword = {who[1]}\n"
        "project = demo\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY")}
    return subprocess.run(
        [str(DEPLOY), "-v", version],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def deployer(stack, tmp_path_factory):
    """A deployer who deployed the test project with scrapyd-deploy."""
    who = user(stack, "deployer")
    done = deploy(stack, who, tmp_path_factory.mktemp("deploy"))
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert answer["status"] == "ok" and answer["project"] == "demo", answer
    assert answer["version"] == "1.0" and answer["spiders"] == len(SPIDERS)
    return who


def test_scrapyd_deploy_uploads_the_project_and_its_spiders_list(stack, deployer):
    assert scrapyd(stack, deployer, "get", "listprojects").json()["projects"] == ["demo"]
    versions = scrapyd(stack, deployer, "get", "listversions", project="demo").json()
    assert versions["versions"] == ["1.0"]
    spiders = scrapyd(stack, deployer, "get", "listspiders", project="demo").json()
    assert spiders["status"] == "ok" and sorted(spiders["spiders"]) == sorted(SPIDERS)


def test_a_wrong_password_is_401(stack, deployer):
    answer = scrapyd(stack, (deployer[0], "wrong-password"), "get", "listprojects")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic ")
    assert answer.json()["status"] == "error"


def test_scrapyd_deploy_without_the_deployer_role_fails_with_scrapyds_error(stack, tmp_path):
    done = deploy(stack, user(stack), tmp_path)
    assert done.returncode == 1
    assert "Deploy failed (403)" in done.stderr
    assert "Status: error" in done.stdout and "deployer" in done.stdout


def test_another_users_project_is_invisible(stack, deployer):
    other = user(stack, "deployer")
    assert scrapyd(stack, other, "get", "listprojects").json()["projects"] == []
    listed = scrapyd(stack, other, "get", "listspiders", project="demo")
    assert listed.status_code == 404
    assert listed.json()["message"] == "project 'demo' not found"


def test_schedule_runs_the_spider_to_completion_and_listjobs_shows_it(stack, deployer, site):
    scheduled = scrapyd(
        stack,
        deployer,
        "post",
        "schedule",
        project="demo",
        spider="catalog",
        start=site.url_for("/catalog/"),
        tag="e2e",
    ).json()
    assert scheduled["status"] == "ok", scheduled
    job_id = scheduled["jobid"]

    def finished():
        listed = scrapyd(stack, deployer, "get", "listjobs", project="demo").json()
        return next((j for j in listed["finished"] if j["id"] == job_id), None)

    row = wait_for(finished, 120, interval=0.3, message=f"spider job {job_id} finished")
    assert row["project"] == "demo" and row["spider"] == "catalog" and row["outcome"] == "completed"
    assert row["start_time"] and row["end_time"]
    token = requests.post(
        stack.url("/auth/login"),
        data={"username": deployer[0], "password": deployer[1]},
        timeout=10,
    ).json()["access_token"]
    results = requests.get(
        f"{stack.base}{row['items_url']}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert results["total"] == 15  # 3 pages of 5 products
    assert {r["data"]["tag"] for r in results["results"]} == {"e2e"}
    state = scrapyd(stack, deployer, "get", "status", job=job_id).json()
    assert state["currstate"] == "finished"


def test_cancel_stops_a_running_spider(stack, deployer, site):
    job_id = scrapyd(
        stack,
        deployer,
        "post",
        "schedule",
        project="demo",
        spider="sleeper",
        start=site.url_for("/catalog/"),
    ).json()["jobid"]

    def running():
        state = scrapyd(stack, deployer, "get", "status", job=job_id).json()["currstate"]
        return state == "running"

    wait_for(running, 120, interval=0.3, message=f"spider job {job_id} running")
    cancelled = scrapyd(stack, deployer, "post", "cancel", project="demo", job=job_id).json()
    assert cancelled == {
        "status": "ok",
        "prevstate": "running",
        "node_name": cancelled["node_name"],
    }
    listed = scrapyd(stack, deployer, "get", "listjobs").json()
    assert job_id not in [j["id"] for j in listed["running"] + listed["pending"]]
    row = next(j for j in listed["finished"] if j["id"] == job_id)
    assert row["outcome"] == "cancelled"


def test_scheduling_an_unknown_spider_answers_in_scrapyds_shape(stack, deployer):
    missing = scrapyd(stack, deployer, "post", "schedule", project="demo", spider="nope")
    assert missing.status_code == 404
    assert missing.json()["message"] == "spider 'nope' not found"
