"""Logins and sessions through the service: a form login with a CSRF token in the browser, then
the crawl in either engine with that session; a wrong password; cookies the user already has;
a schedule that keeps its session between runs; secrets that never come back out."""

from __future__ import annotations

import json
import os
from urllib.parse import quote, urlsplit

import pytest
import requests

from testing.helpers import Stack, wait_for
from testing.receiver import Receiver
from testing.sites import members
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser]

CRAWL = {"item_selector": "li.item", "follow_links": True, "link_selector": "a.next"}
SELECTORS = {"name": "::text"}
TOKEN = "Bearer header-secret-4c1e"  # noqa: S105 - a test's own secret, searched for below


def login(site: SiteServer, password: str = members.PASSWORD) -> dict:
    return {
        "url": site.url_for("/members/login"),
        "fields": {"#username": members.USERNAME, "#password": password},
        "submit": "button[type=submit]",
        "success_selector": "a.logout",
    }


@pytest.fixture(scope="module")
def served():
    """The site and a webhook receiver, up before the stack: the only loopback targets its
    target policy allows (PRIVATE_TARGETS=block), so a login can be seen kept from another."""
    with SiteServer() as site:
        receiver = Receiver()
        try:
            yield site, receiver
        finally:
            receiver.close()


@pytest.fixture(scope="module")
def login_stack(redis_url, mongo_url, tmp_path_factory, served):
    site, receiver = served
    allowed = f"{urlsplit(site.url).netloc},{urlsplit(receiver.url).netloc}"
    stack = Stack(redis_url, mongo_url, f"lg_{os.getpid()}", tmp_path_factory.mktemp("lg"))
    try:
        stack.start(
            api=True,
            queues=("scrapy", "playwright", "webhooks"),
            PRIVATE_TARGETS="block",
            TARGET_ALLOWLIST=allowed,
        )
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def site(served):
    """The module's site with a fresh members area (its counts start at 0)."""
    site, _ = served
    site.members = members.Members()
    return site


def names(stack: Stack, job_id: str, headers: dict) -> list[str]:
    page = requests.get(
        stack.url(f"/results/{job_id}"), headers=headers, params={"limit": 100}, timeout=10
    ).json()
    return sorted(r["data"]["name"] for r in page["results"])


def member_view() -> list[str]:
    return sorted(members.item_names("home", True) + members.item_names("more", True))


def raw(stack: Stack, path: str, headers: dict, **params) -> str:
    answer = requests.get(stack.url(path), headers=headers, params=params, timeout=30)
    assert answer.status_code == 200, (path, answer.text)
    return answer.text


def test_a_browser_login_serves_both_engines_and_its_secrets_never_come_back(
    login_stack, site, served
):
    stack = login_stack
    headers = stack.register()
    receiver = served[1]
    jobs = {
        engine: stack.submit(
            headers,
            url=site.url_for("/members/"),
            engine=engine,
            selectors=SELECTORS,
            config={**CRAWL, "login": login(site), "headers": {"Authorization": TOKEN}},
            webhook_url=receiver.url,
        )
        for engine in ("playwright", "scrapy")
    }
    done = {e: stack.wait_job(j["id"], headers, timeout=120) for e, j in jobs.items()}
    wait_for(lambda: len(receiver.calls) >= 2, 30, message="the jobs' webhooks")
    for engine, job in done.items():
        assert job["status"] == "completed", job
        assert job["engine_used"] == engine
        assert names(stack, job["id"], headers) == member_view(), engine
    assert site.members.logins == 2  # one login per job, in the browser
    assert site.members.failed_logins == 0
    # the secrets: answered as ***, in no answer, log, event, webhook or export
    answered = done["scrapy"]["config"]
    assert answered["login"]["fields"] == {"#username": "***", "#password": "***"}
    assert answered["headers"] == {"Authorization": "***"}
    job_id = done["scrapy"]["id"]
    texts = [
        raw(stack, f"/jobs/{job_id}", headers),
        raw(stack, "/jobs", headers),
        raw(stack, f"/jobs/{job_id}/logs", headers),
        raw(stack, f"/jobs/{job_id}/events", headers),
        raw(stack, f"/results/{job_id}/export", headers, format="json"),
        raw(stack, f"/results/{job_id}/export", headers, format="csv"),
        *(body.decode() for _, body in receiver.calls),
    ]
    log_text = "\n".join(p.read_text(errors="replace") for p in stack.logs.values())
    for secret in (members.PASSWORD, TOKEN):
        assert all(secret not in text for text in texts), secret
        assert secret not in log_text, secret
    logs = raw(stack, f"/jobs/{job_id}/logs", headers)
    assert "login: logged in at" in logs and "goes to the static engine" in logs
    # at rest: sealed in MongoDB, the session handed to Scrapy too
    stored = stack.database().jobs.find_one({"_id": job_id})
    assert stored["config"]["login"]["fields"]["#password"].startswith("sealed:v1:")
    assert stored["session"].startswith("sealed:v1:")
    assert members.PASSWORD not in json.dumps(stored, default=str)
    assert TOKEN not in json.dumps(stored, default=str)


def test_a_wrong_password_fails_the_job_login_failed(login_stack, site):
    headers = login_stack.register()
    job = login_stack.submit(
        headers,
        url=site.url_for("/members/"),
        engine="auto",
        selectors=SELECTORS,
        config={**CRAWL, "login": login(site, password="not-the-password")},
    )
    done = login_stack.wait_job(job["id"], headers, timeout=90)
    assert done["status"] == "failed", done
    assert done["error"]["type"] == "login_failed"
    assert "'a.logout' is absent after submitting" in done["error"]["message"]
    assert site.url_for("/members/login") in done["error"]["message"]
    assert "not-the-password" not in json.dumps(done)
    assert site.members.failed_logins == 1 and site.members.logins == 0


def test_cookies_the_user_has_open_a_gated_page_in_both_engines(login_stack, site):
    headers = login_stack.register()
    cookie = {"name": members.GATE_COOKIE, "value": site.members.gate_value}
    jobs = [
        login_stack.submit(
            headers,
            url=site.url_for("/members/gated"),
            engine=engine,
            selectors=SELECTORS,
            config={"item_selector": "li.item", "cookies": [cookie]},
        )
        for engine in ("scrapy", "playwright")
    ]
    for job in jobs:
        done = login_stack.wait_job(job["id"], headers, timeout=90)
        assert done["status"] == "completed", done
        assert names(login_stack, job["id"], headers) == ["gated 1", "gated 2", "gated 3"]
        assert done["config"]["cookies"][0]["value"] == "***"
    assert site.members.gate_value not in raw(login_stack, "/jobs", headers)


def test_a_schedule_keeps_its_session_until_the_site_ends_it(login_stack, site):
    stack = login_stack
    headers = stack.register()
    body = {
        "name": "members",
        "cron": "0 0 1 1 *",  # once a year: every run here is started by hand
        "job": {
            "url": site.url_for("/members/"),
            "engine": "scrapy",
            "selectors": SELECTORS,
            "config": {**CRAWL, "login": login(site)},
        },
    }
    answer = requests.post(stack.url("/schedules"), json=body, headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text
    schedule = answer.json()
    assert schedule["job"]["config"]["login"]["fields"]["#password"] == "***"

    def run() -> dict:
        started = requests.post(
            stack.url(f"/schedules/{schedule['id']}/run"), headers=headers, timeout=10
        )
        assert started.status_code in (200, 201, 202), started.text
        done = stack.wait_job(started.json()["job_id"], headers, timeout=120)
        assert done["status"] == "completed", done
        assert names(stack, done["id"], headers) == member_view()
        return done

    run()
    second = run()
    assert site.members.logins == 1  # the second run reused the kept session
    second_log = raw(stack, f"/jobs/{second['id']}/logs", headers)
    assert "the kept session is still logged in" in second_log
    site.members.invalidate()  # the site ends every session
    run()
    assert site.members.logins == 2  # the check failed: it logged in again
    stored = stack.database().schedules.find_one({"_id": schedule["id"]})
    assert stored["session"]["state"].startswith("sealed:v1:")
    assert members.PASSWORD not in json.dumps(stored, default=str)
    listed = raw(stack, "/schedules", headers)
    assert members.PASSWORD not in listed and '"***"' in listed


def test_a_preview_logs_in_first_and_shows_the_members_view(login_stack, site):
    headers = login_stack.register()
    answer = requests.post(
        login_stack.url("/jobs/preview"),
        json={
            "url": site.url_for("/members/"),
            "engine": "scrapy",
            "selectors": SELECTORS,
            "config": {"item_selector": "li.item", "login": login(site)},
        },
        headers=headers,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["engine"] == "playwright"  # the login is the browser's
    assert sorted(i["name"] for i in shown["items"]) == sorted(members.item_names("home", True))
    assert members.PASSWORD not in answer.text


def test_a_login_is_under_the_target_policy_like_any_page(login_stack, site):
    headers = login_stack.register()
    elsewhere = "http://127.0.0.1:59999/members/login"  # loopback, not allow-listed: blocked
    form = {**login(site), "url": site.url_for(f"/members/login?action={quote(elsewhere)}")}
    job = login_stack.submit(
        headers,
        url=site.url_for("/members/"),
        engine="scrapy",
        selectors=SELECTORS,
        config={**CRAWL, "login": form},
    )
    done = login_stack.wait_job(job["id"], headers, timeout=90)
    assert done["status"] == "failed", done
    assert done["error"]["type"] == "blocked_target", done["error"]
    assert "blocked target 127.0.0.1:59999" in done["error"]["message"]
    assert site.members.logins == 0 and site.members.failed_logins == 0  # nothing was posted
    refused = requests.post(
        login_stack.url("/jobs"),
        json={"url": site.url_for("/members/"), "config": {"login": {**form, "url": elsewhere}}},
        headers=headers,
        timeout=10,
    )
    assert refused.status_code == 422 and "config.login.url" in refused.json()["errors"]
