"""The target policy end to end in Chromium: every request a page makes goes through the
worker's egress proxy, so a loopback tripwire that is not allow-listed sees no connection."""

from __future__ import annotations

import uuid

import pytest
import requests

from shared import tasks
from shared.jobs import JobRepository
from tests.helpers import Stack
from tests.sites.server import SiteServer
from tests.tripwire import Tripwire

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def site():
    with SiteServer(pages=3) as server:
        yield server


@pytest.fixture(scope="module")
def wire():
    with Tripwire() as tripwire:
        yield tripwire


@pytest.fixture(scope="module")
def guarded(redis_url, mongo_url, tmp_path_factory, site):
    stack = Stack(
        redis_url, mongo_url, f"bpol_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("bp")
    )
    try:
        stack.start(
            api=True,
            queues=("playwright",),
            PRIVATE_TARGETS="block",
            TARGET_ALLOWLIST=f"127.0.0.1:{site.port}",
        )
        yield stack
    finally:
        stack.stop()


def log_text(stack: Stack, job_id: str, headers: dict) -> str:
    answer = requests.get(stack.url(f"/jobs/{job_id}/logs"), headers=headers, timeout=10)
    return "\n".join(line["message"] for line in answer.json()["logs"])


def test_a_pages_scripts_frames_fetch_xhr_websocket_and_links_never_reach_a_blocked_port(
    guarded, wire, site
):
    headers = guarded.register()
    job = guarded.submit(
        headers,
        url=site.url_for(f"/trap?to={wire.url}"),
        engine="playwright",
        selectors={"ok": "p.ok::text"},
        config={"follow_links": True, "link_selector": "a::attr(href)", "obey_robots": False},
    )
    done = guarded.wait_job(job["id"], headers, timeout=90)
    assert done["status"] == "completed", done
    assert done["items_scraped"] == 1
    assert f"blocked target 127.0.0.1:{wire.port}" in log_text(guarded, job["id"], headers)
    assert wire.hits == 0


def test_a_redirect_into_a_blocked_port_fails_the_page(guarded, wire, site):
    headers = guarded.register()
    job = guarded.submit(
        headers,
        url=site.url_for(f"/redirect?to={wire.url}"),
        engine="playwright",
        config={"obey_robots": False},
    )
    done = guarded.wait_job(job["id"], headers, timeout=90)
    assert done["status"] == "failed" and done["error"]["type"] == "blocked_target", done
    assert wire.hits == 0


def test_a_name_resolving_to_a_blocked_address_fails_with_robots_on(guarded, wire):
    headers = guarded.register()
    me = requests.get(guarded.url("/auth/me"), headers=headers, timeout=10).json()
    job = JobRepository(guarded.database()).create(
        me["id"], {"url": f"http://localhost:{wire.port}/", "engine": "playwright"}
    )  # bypasses the API's literal check, as a name that resolves to loopback would
    guarded.celery().send_task(tasks.SCRAPE, **tasks.scrape_options(job))
    done = guarded.wait_job(job["_id"], headers, timeout=90)
    assert done["status"] == "failed" and done["error"]["type"] == "blocked_target", done
    assert wire.hits == 0  # robots.txt included


def test_the_allow_listed_site_still_renders(guarded, site):
    headers = guarded.register()
    job = guarded.submit(
        headers,
        url=site.url_for("/js/catalog/"),
        engine="playwright",
        selectors={"sku": "./@data-sku"},
        config={"item_selector": "div.product", "follow_links": True, "link_selector": "li.next a"},
    )
    done = guarded.wait_job(job["id"], headers, timeout=90)
    assert done["status"] == "completed" and done["items_scraped"] == 30, done
