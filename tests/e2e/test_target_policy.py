"""The target policy end to end in both engines: a loopback "tripwire" port that is not
allow-listed sees no connection, whatever path a URL takes (start URL, a name resolving to it,
a redirect, a followed link, and in Chromium every sub-resource a page asks for); allow-listed
sites still crawl."""

from __future__ import annotations

import uuid

import pytest
import requests

from shared import tasks
from shared.jobs import JobRepository
from testing.helpers import Stack, wait_for
from testing.sites.server import SiteServer
from testing.tripwire import Tripwire

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def site():
    with SiteServer(pages=3) as server:
        yield server


@pytest.fixture(scope="module")
def wire():
    with Tripwire() as tripwire:
        yield tripwire


def policy_stack(redis_url, mongo_url, tmp_path_factory, site, queue: str):
    """A stack whose targets are blocked but for the demo site's port."""
    stack = Stack(
        redis_url, mongo_url, f"pol_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("pol")
    )
    try:
        stack.start(
            api=True,
            queues=(queue,),
            PRIVATE_TARGETS="block",
            TARGET_ALLOWLIST=f"127.0.0.1:{site.port}",
        )
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def guarded(redis_url, mongo_url, tmp_path_factory, site):
    for stack in policy_stack(redis_url, mongo_url, tmp_path_factory, site, "scrapy"):
        stack.start_worker("webhooks")
        yield stack


@pytest.fixture(scope="module")
def browser_guarded(redis_url, mongo_url, tmp_path_factory, site):
    yield from policy_stack(redis_url, mongo_url, tmp_path_factory, site, "playwright")


def direct_job(stack: Stack, headers: dict, url: str, engine: str = "scrapy", **config) -> str:
    """A job stored and sent as the API would, bypassing its literal-address check."""
    me = requests.get(stack.url("/auth/me"), headers=headers, timeout=10).json()
    job = JobRepository(stack.database()).create(
        me["id"], {"url": url, "engine": engine, "config": {"obey_robots": False, **config}}
    )
    stack.celery().send_task(tasks.SCRAPE, **tasks.scrape_options(job))
    return job["_id"]


def logs(stack: Stack, job_id: str, headers: dict) -> str:
    answer = requests.get(stack.url(f"/jobs/{job_id}/logs"), headers=headers, timeout=10)
    return "\n".join(line["message"] for line in answer.json()["logs"])


def test_a_literal_blocked_start_url_is_refused_at_submit(guarded, wire):
    headers = guarded.register()
    for url in (wire.url, f"http://localhost:{wire.port}/", f"http://0x7f.1:{wire.port}/"):
        answer = requests.post(guarded.url("/jobs"), json={"url": url}, headers=headers, timeout=10)
        assert answer.status_code == 422 and "Blocked target" in answer.json()["errors"]["url"][0]
    assert wire.hits == 0


def test_a_name_resolving_to_a_blocked_address_fails_the_job(guarded, wire):
    headers = guarded.register()
    job_id = direct_job(guarded, headers, f"http://localhost:{wire.port}/")
    done = guarded.wait_job(job_id, headers)
    assert done["status"] == "failed" and done["error"]["type"] == "blocked_target", done
    assert "loopback" in done["error"]["message"]
    assert wire.hits == 0


def test_a_redirect_into_a_blocked_address_is_not_followed(guarded, wire, site):
    headers = guarded.register()
    job = guarded.submit(
        headers,
        url=site.url_for(f"/redirect?to={wire.url}"),
        engine="scrapy",
        config={"obey_robots": False},
    )
    done = guarded.wait_job(job["id"], headers)
    assert done["status"] == "failed" and done["error"]["type"] == "blocked_target", done
    assert wire.hits == 0


def test_blocked_links_are_skipped_and_logged_while_the_allowed_site_crawls(guarded, wire, site):
    headers = guarded.register()
    job = guarded.submit(
        headers,
        url=site.url_for(f"/trap?to={wire.url}"),
        engine="scrapy",
        selectors={"ok": "p.ok::text"},
        config={"follow_links": True, "link_selector": "a::attr(href)", "obey_robots": False},
    )
    done = guarded.wait_job(job["id"], headers)
    assert done["status"] == "completed", done
    assert done["items_scraped"] == 1
    assert "blocked target" in logs(guarded, job["id"], headers)
    catalog = guarded.submit(
        headers,
        url=site.url_for("/catalog/"),
        engine="scrapy",
        selectors={"sku": "./@data-sku"},
        config={"item_selector": "div.product", "follow_links": True, "link_selector": "li.next a"},
    )
    finished = guarded.wait_job(catalog["id"], headers)
    assert finished["status"] == "completed" and finished["items_scraped"] == 30
    assert wire.hits == 0


@pytest.mark.browser
def test_a_pages_scripts_frames_fetch_xhr_websocket_and_links_never_reach_a_blocked_port(
    browser_guarded, wire, site
):
    headers = browser_guarded.register()
    job = browser_guarded.submit(
        headers,
        url=site.url_for(f"/trap?to={wire.url}"),
        engine="playwright",
        selectors={"ok": "p.ok::text"},
        config={"follow_links": True, "link_selector": "a::attr(href)", "obey_robots": False},
    )
    done = browser_guarded.wait_job(job["id"], headers, timeout=90)
    assert done["status"] == "completed", done
    assert done["items_scraped"] == 1
    assert f"blocked target 127.0.0.1:{wire.port}" in logs(browser_guarded, job["id"], headers)
    assert wire.hits == 0


@pytest.mark.browser
def test_a_redirect_into_a_blocked_port_fails_the_page(browser_guarded, wire, site):
    headers = browser_guarded.register()
    job = browser_guarded.submit(
        headers,
        url=site.url_for(f"/redirect?to={wire.url}"),
        engine="playwright",
        config={"obey_robots": False},
    )
    done = browser_guarded.wait_job(job["id"], headers, timeout=90)
    assert done["status"] == "failed" and done["error"]["type"] == "blocked_target", done
    assert wire.hits == 0


@pytest.mark.browser
def test_a_name_resolving_to_a_blocked_address_fails_with_robots_on(browser_guarded, wire):
    headers = browser_guarded.register()
    job_id = direct_job(
        browser_guarded, headers, f"http://localhost:{wire.port}/", "playwright", obey_robots=True
    )
    done = browser_guarded.wait_job(job_id, headers, timeout=90)
    assert done["status"] == "failed" and done["error"]["type"] == "blocked_target", done
    assert wire.hits == 0  # robots.txt included


@pytest.mark.browser
def test_the_allow_listed_site_still_renders(browser_guarded, site):
    headers = browser_guarded.register()
    job = browser_guarded.submit(
        headers,
        url=site.url_for("/js/catalog/"),
        engine="playwright",
        selectors={"sku": "./@data-sku"},
        config={"item_selector": "div.product", "follow_links": True, "link_selector": "li.next a"},
    )
    done = browser_guarded.wait_job(job["id"], headers, timeout=90)
    assert done["status"] == "completed" and done["items_scraped"] == 30, done


def test_a_webhook_to_a_blocked_address_is_refused_and_never_sent(guarded, wire, site):
    headers = guarded.register()
    literal = requests.post(
        guarded.url("/webhooks"), json={"webhook_url": wire.url}, headers=headers, timeout=10
    )
    assert literal.status_code == 422 and "webhook_url" in literal.json()["errors"]
    # a receiver whose name resolves to a blocked address, as a stored webhook could
    me = requests.get(guarded.url("/auth/me"), headers=headers, timeout=10).json()
    from shared.webhooks import WebhookRepository

    hook = WebhookRepository(guarded.database()).create(
        me["id"], f"http://localhost:{wire.port}/hook", ["job.completed"], None
    )
    job = guarded.submit(
        headers, url=site.url_for("/catalog/"), engine="scrapy", config={"obey_robots": False}
    )
    guarded.wait_job(job["id"], headers)

    def attempt() -> list:
        answer = requests.get(
            guarded.url(f"/webhooks/{hook['_id']}/deliveries"), headers=headers, timeout=10
        )
        return [row for row in answer.json() if row["state"] == "failed"]

    failed = wait_for(attempt, 30, message="the delivery attempt")
    assert "blocked target" in failed[0]["error"] and failed[0]["next_retry_at"] is None
    assert wire.hits == 0


@pytest.mark.browser
def test_actions_never_reach_a_blocked_port_or_a_local_file(browser_guarded, wire, site):
    headers = browser_guarded.register()
    clicked = browser_guarded.submit(
        headers,
        url=site.url_for(f"/act/jump?to={wire.url}"),
        engine="playwright",
        selectors={"title": "h1.title::text"},
        config={"obey_robots": False, "actions": [{"type": "click", "selector": "#go"}]},
    )
    scripted = browser_guarded.submit(
        headers,
        url=site.url_for("/act/jump"),
        engine="playwright",
        selectors={"title": "h1.title::text"},
        config={
            "obey_robots": False,
            "actions": [
                {"type": "evaluate", "script": f"fetch({wire.url!r}).catch(() => 0)"},
                {"type": "evaluate", "script": "location.href = 'file:///etc/passwd'"},
                {"type": "wait", "milliseconds": 300},
            ],
        },
    )
    done = browser_guarded.wait_job(clicked["id"], headers, timeout=90)
    assert done["status"] == "failed" and done["error"]["type"] == "blocked_target", done
    assert f"127.0.0.1:{wire.port}" in done["error"]["message"]
    done = browser_guarded.wait_job(scripted["id"], headers, timeout=90)
    assert done["status"] == "completed" and done["items_scraped"] == 1, done
    text = logs(browser_guarded, scripted["id"], headers)
    assert "blocked target" in text and "file:///etc/passwd" in text
    assert wire.hits == 0
