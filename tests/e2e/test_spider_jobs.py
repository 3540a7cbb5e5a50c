"""Users' own Scrapy spiders as jobs (`engine: "spider"`) on a real API and worker-spiders: the
items, events and log of a run, and the sandbox: no secrets, memory and time limits,
cancellation, the target policy."""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from shared import events
from shared.eggs import EggStore
from testing.helpers import Stack, wait_for
from testing.sites import members
from testing.sites.server import SiteServer, price_for, sku_for
from testing.spider_eggs import demo_egg

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MEMORY_MB = 400


@pytest.fixture(scope="module")
def spider_stack(redis_url, mongo_url, tmp_path_factory) -> Iterator[Stack]:
    """The API and a worker of the queue spiders (two jobs at once), with a small memory limit."""
    stack = Stack(redis_url, mongo_url, f"e2e_spiders_{os.getpid()}", tmp_path_factory.mktemp("sp"))
    try:
        stack.start(api=True, queues=(), SPIDER_MAX_MEMORY_MB=str(MEMORY_MB))
        stack.start_worker("spiders", concurrency=2)
        yield stack
    finally:
        stack.stop()


def deploy(stack: Stack, headers: dict, project: str = "demo", version: str = "1.0") -> str:
    """Store the test project's egg as `headers`' user's (the Scrapyd API does this in part 2)."""
    me = requests.get(stack.url("/auth/me"), headers=headers, timeout=10).json()
    EggStore(stack.database()).add(me["id"], project, version, demo_egg())
    return me["id"]


def spider_job(stack: Stack, headers: dict, name: str, **extra) -> dict:
    body = {"engine": "spider", "spider": {"project": "demo", "name": name, **extra}}
    config = body["spider"].pop("config", None)
    if config:
        body["config"] = config
    return stack.submit(headers, **body)


def job_events(stack: Stack, job_id: str) -> list[dict]:
    client = redis.Redis.from_url(stack.redis_url)
    return [events.decode(i, f) for i, f in client.xrange(events.job_stream(job_id))]


def job_items(stack: Stack, job_id: str, headers: dict) -> list[dict]:
    answer = requests.get(
        stack.url(f"/results/{job_id}?limit=1000"), headers=headers, timeout=10
    ).json()
    return [row["data"] for row in answer["results"]]


def job_logs(stack: Stack, job_id: str, headers: dict) -> list[dict]:
    answer = requests.get(stack.url(f"/jobs/{job_id}/logs?limit=1000"), headers=headers, timeout=10)
    return answer.json()["logs"]


def test_a_spider_job_stores_its_items_streams_progress_and_keeps_its_log(spider_stack):
    stack = spider_stack
    headers = stack.register()
    deploy(stack, headers)
    with SiteServer(pages=3, items_per_page=5) as site:
        catalog = spider_job(
            stack, headers, "catalog", args={"start": f"{site.url}/catalog/", "tag": "run-1"}
        )
        chatty = spider_job(stack, headers, "chatty", args={"start": f"{site.url}/catalog/"})
        assert catalog["engine"] == "spider" and catalog["spider"]["name"] == "catalog"
        done = stack.wait_job(catalog["id"], headers, timeout=90)
        talked = stack.wait_job(chatty["id"], headers, timeout=90)

    assert done["status"] == "completed", done
    assert (done["pages_crawled"], done["items_scraped"]) == (3, 15)
    expected = [
        {"sku": sku_for(i), "title": f"Product {i}", "price": price_for(i), "tag": "run-1"}
        for i in range(1, 16)
    ]
    assert sorted(job_items(stack, catalog["id"], headers), key=lambda i: i["sku"]) == expected
    kinds = [e["type"] for e in job_events(stack, catalog["id"])]
    assert kinds[0] == events.STARTED and kinds[-1] == events.COMPLETED
    streamed = job_events(stack, catalog["id"])
    progress = [e["data"]["items_scraped"] for e in streamed if e["type"] == events.PROGRESS]
    # progress comes at PROGRESS_INTERVAL_SECONDS while it runs (how many depends on the
    # machine's speed), never goes back, and the terminal event carries the final counts
    assert progress and progress == sorted(progress) and progress[-1] <= 15
    assert streamed[-1]["data"]["items_scraped"] == 15

    assert talked["status"] == "completed", talked
    lines = {(line["level"], line["message"]) for line in job_logs(stack, chatty["id"], headers)}
    for level in ("INFO", "WARNING", "ERROR", "CRITICAL"):
        assert (level, f"chatty {level.lower()} line") in lines
    assert not any("debug line" in message for _, message in lines)  # LOG_LEVEL INFO by default
    assert not any("printed to stdout" in message for _, message in lines)
    logged = {
        e["data"]["message"] for e in job_events(stack, chatty["id"]) if e["type"] == events.LOG
    }
    assert "chatty warning line" in logged


def test_a_spider_logs_in_with_a_form_and_one_that_raises_in_a_callback_keeps_its_items(
    spider_stack,
):
    stack = spider_stack
    headers = stack.register()
    deploy(stack, headers)
    with SiteServer(pages=2, items_per_page=3) as site:
        login = spider_job(
            stack,
            headers,
            "members",
            args={
                "start": f"{site.url}/members/login",
                "username": members.USERNAME,
                "password": members.PASSWORD,
            },
        )
        broken = spider_job(stack, headers, "broken", args={"start": f"{site.url}/catalog/"})
        logged_in = stack.wait_job(login["id"], headers, timeout=90)
        raised = stack.wait_job(broken["id"], headers, timeout=90)
        logins = site.members.logins

    # FormRequest.from_response posted the form's CSRF token back: one login, then the pages
    # a member sees, as the spider's scrapy.Item class (MemberItem) with its fields
    assert logged_in["status"] == "completed", logged_in
    assert logins == 1
    expected = [
        {"page": path, "name": name, "members_only": "members-only" in name}
        for path, page in (("/members/", "home"), ("/members/more", "more"))
        for name in members.item_names(page, member=True)
    ]
    got = job_items(stack, login["id"], headers)
    by_place = operator.itemgetter("page", "name")
    assert sorted(got, key=by_place) == sorted(expected, key=by_place)
    assert sum(item["members_only"] for item in got) == 2 * members.MEMBER_ITEMS

    # the exception is logged as Scrapy logs it, with its traceback; the crawl goes on and the
    # job completes with the items of the pages before it (docs/guide/spiders.md)
    assert raised["status"] == "completed", raised
    items = job_items(stack, broken["id"], headers)
    assert sorted(items, key=lambda i: i["sku"]) == [
        {"sku": sku_for(i), "tag": "before the error"} for i in range(1, 4)
    ]
    errors = [line["message"] for line in job_logs(stack, broken["id"], headers)]
    errors = [m for m in errors if "Spider error processing" in m]
    assert len(errors) == 1, errors
    assert "Traceback (most recent call last)" in errors[0]
    assert "ValueError: cannot parse" in errors[0] and "in second" in errors[0]
    levels = {
        line["level"]
        for line in job_logs(stack, broken["id"], headers)
        if "Spider error processing" in line["message"]
    }
    assert levels == {"ERROR"}


def test_a_spider_job_names_a_spider_the_caller_has(spider_stack):
    stack = spider_stack
    owner, other = stack.register(), stack.register()
    deploy(stack, owner)

    def refused(headers: dict, spider: dict) -> dict:
        answer = requests.post(
            stack.url("/jobs"),
            json={"engine": "spider", "spider": spider},
            headers=headers,
            timeout=30,
        )
        assert answer.status_code == 422, answer.text
        return answer.json()["errors"]

    assert "spider.project" in refused(other, {"project": "demo", "name": "catalog"})
    assert "spider.version" in refused(
        owner, {"project": "demo", "version": "9", "name": "catalog"}
    )
    errors = refused(owner, {"project": "demo", "name": "nope"})
    assert "catalog" in errors["spider.name"][0]  # says which spiders there are
    errors = refused(
        owner, {"project": "demo", "name": "catalog", "settings": {"ITEM_PIPELINES": {}}}
    )
    assert "ITEM_PIPELINES cannot be set" in str(errors)
    answer = requests.post(
        stack.url("/jobs"),
        json={"engine": "scrapy", "spider": {"project": "demo", "name": "x"}},
        headers=owner,
        timeout=10,
    )
    assert answer.status_code == 422 and "spider" in answer.json()["errors"]


def _spider_children(stack: Stack) -> list[int]:
    return [child for pool in stack.children("worker-spiders") for child in _children(pool)]


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_a_spider_is_sandboxed(spider_stack, tmp_path):
    stack = spider_stack
    headers = stack.register()
    deploy(stack, headers)
    secret = stack.workdir / "service-secret"
    secret.write_text("the-service-secret\n")
    secret.chmod(0o600)
    redis_port = int(stack.redis_url.rsplit(":", 1)[1].split("/")[0])
    blocked = f"http://127.0.0.1:{redis_port}/"
    with SiteServer(pages=1, items_per_page=2) as site:
        start = f"{site.url}/catalog/"
        snoop = spider_job(
            stack, headers, "snoop", args={"start": start, "secret_file": str(secret)}
        )
        escape = spider_job(stack, headers, "escape", args={"target": blocked, "proxy": blocked})
        snooped = stack.wait_job(snoop["id"], headers, timeout=90)
        escaped = stack.wait_job(escape["id"], headers, timeout=90)
        hog = spider_job(stack, headers, "hog", args={"start": start})
        sleeper = spider_job(
            stack, headers, "sleeper", args={"start": start}, config={"timeout_seconds": 5}
        )
        hogged = stack.wait_job(hog["id"], headers, timeout=90)
        slept = stack.wait_job(sleeper["id"], headers, timeout=90)

        # cancelled while it runs: its process is gone within seconds
        cancel = spider_job(stack, headers, "sleeper", args={"start": start})
        wait_for(
            lambda: (
                stack.job(cancel["id"], headers)["items_scraped"] >= 0 and _spider_children(stack)
            ),
            60,
            message="the spider running",
        )
        running = _spider_children(stack)
        answer = requests.post(
            stack.url(f"/jobs/{cancel['id']}/cancel"), headers=headers, timeout=10
        )
        assert answer.status_code == 200, answer.text
        wait_for(
            lambda: not (set(running) & set(_spider_children(stack))),
            10,
            message="the cancelled spider's process gone",
        )
        assert stack.wait_job(cancel["id"], headers, timeout=30)["status"] == "cancelled"

    assert snooped["status"] == "completed", snooped
    (found,) = job_items(stack, snoop["id"], headers)
    assert not {"MONGO_URL", "REDIS_URL", "JWT_SECRET_KEY", "MONGO_DB"} & set(found["environ"])
    text = str(found)
    assert stack.mongo_url not in text and stack.redis_url not in text
    assert "the-service-secret" not in text and found["secret_file"].startswith("unreadable")
    assert found["parent_environ"].startswith("unreadable")

    assert escaped["status"] == "completed", escaped
    got = job_items(stack, escape["id"], headers)
    assert got and all("blocked" in item and "reached" not in item for item in got), got
    assert len(got) == 2  # the direct request and the one through the "proxy"

    assert hogged["status"] == "failed" and hogged["error"]["type"] == "memory_limit", hogged
    assert f"SPIDER_MAX_MEMORY_MB = {MEMORY_MB} MB" in hogged["error"]["message"]
    assert slept["status"] == "failed" and slept["error"]["type"] == "timeout", slept
