"""The dashboard and the docs in a real Chromium against real processes, with every request
outside the service blocked (and counted: none may be made)."""

from __future__ import annotations

import csv
import io
import re
import struct
import uuid
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from shared.files import JobFiles
from testing.helpers import Stack, wait_for
from testing.sites.server import SiteServer, sku_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser]

PASSWORD = "correct-horse"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CATALOG = {
    "selectors": {"sku": "./@data-sku", "title": "h2.product-title::text"},
    "config": {
        "item_selector": "div.product",
        "follow_links": True,
        "link_selector": "li.next a",
        "concurrency": 1,
    },
}


@pytest.fixture(scope="module")
def stack(redis_url, mongo_url, tmp_path_factory):
    s = Stack(redis_url, mongo_url, f"dash_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("dash"))
    try:
        s.start(api=True, queues=("scrapy",))
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def site():
    with SiteServer(pages=5, items_per_page=10) as server:
        yield server


@pytest.fixture(scope="module")
def account(stack):
    """A user: (username, API headers)."""
    username = f"d{uuid.uuid4().hex[:8]}"
    return username, stack.register(username, PASSWORD)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Guard:
    """Aborts every request to a host other than the API's, and remembers it."""

    def __init__(self, allowed: str):
        self.allowed = allowed
        self.blocked: list[str] = []
        self.served = 0

    def __call__(self, route) -> None:
        url = route.request.url
        if urlsplit(url).netloc != self.allowed:
            self.blocked.append(url)
            route.abort()
        else:
            self.served += 1
            route.continue_()


@pytest.fixture
def page(browser, stack, request, tmp_path):
    """A fresh browser context whose only reachable host is the API (127.0.0.1:<port>)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    guard = Guard(urlsplit(stack.base).netloc)
    context.route("**/*", guard)
    tab = context.new_page()
    tab.guard = guard
    tab.set_default_timeout(30_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shot = tmp_path / "failure.png"
        tab.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
    context.close()
    assert errors == [], errors  # no script error on any page


def log_in(page, stack, username: str) -> None:
    page.goto(stack.base + "/")
    page.wait_for_url("**/login?next=%2F")
    page.fill("#login-form input[name=username]", username)
    page.fill("#login-form input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(stack.base + "/")


def test_a_job_submitted_elsewhere_appears_and_finishes_without_reloading(
    page, stack, site, account
):
    username, headers = account
    log_in(page, stack, username)
    page.wait_for_selector("body[data-live='1']")  # the event stream is open
    page.evaluate("window.sameDocument = true")
    job = stack.submit(headers, url=site.url_for("/catalog/"), engine="scrapy", **CATALOG)
    row = f"#jobs tr[data-job-id='{job['id']}']"
    page.wait_for_selector(row)
    page.wait_for_selector(f"{row}[data-status='completed']")
    assert page.inner_text(f"{row} .items") == "50"
    assert page.inner_text(f"{row} .pages") == "5"
    assert page.inner_text(f"{row} .engine") == "scrapy"
    assert "100%" in page.inner_text(row)
    assert page.evaluate("window.sameDocument") is True  # no reload happened
    assert page.guard.blocked == []
    assert page.guard.served > 5


def test_job_page_shows_results_exports_and_resets_live(page, stack, site, account):
    username, headers = account
    job = stack.submit(headers, url=site.url_for("/catalog/"), engine="scrapy", **CATALOG)
    stack.wait_job(job["id"], headers)
    log_in(page, stack, username)
    page.goto(f"{stack.base}/jobs/{job['id']}")
    page.wait_for_selector("body[data-status='completed']")
    wait_for(lambda: page.locator("#results tbody tr").count() == 20, message="first results")
    assert page.inner_text("#results tbody tr:first-child").startswith(sku_for(1))
    page.wait_for_selector("#logs li:has-text('completed: 5 pages, 50 items')")
    assert page.is_disabled("[data-action=retry]")  # retry is for failed or cancelled jobs
    assert page.is_disabled("[data-action=cancel]")
    with page.expect_download() as download:
        page.click("[data-export=csv]")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == 50 and rows[0]["sku"] == sku_for(1)
    page.evaluate(
        """window.sameDocument = true; window.statuses = [];
        new MutationObserver(() => statuses.push(document.body.dataset.status))
            .observe(document.body, {attributes: true, attributeFilter: ["data-status"]});"""
    )
    page.click("[data-action=reset]")
    # pending again, then (live, from the job's event stream) completed
    page.wait_for_function(  # a function, not an expression: the page's CSP forbids eval
        "() => statuses.includes('pending') && statuses.lastIndexOf('completed') > "
        "statuses.indexOf('pending')"
    )
    assert page.inner_text("[data-fact=Items]") == "50"
    page.wait_for_selector("#logs li:has-text('reset by')")  # the log follows, live too
    assert page.evaluate("window.sameDocument") is True
    assert page.guard.blocked == []


def _png(width: int, height: int) -> bytes:
    """A valid PNG of one grey colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_job_page_shows_screenshot_thumbnails_and_pdf_links(page, stack, site, account):
    username, headers = account
    job = stack.submit(headers, url=site.url_for("/catalog/"), engine="scrapy", **CATALOG)
    stack.wait_job(job["id"], headers)
    owner = stack.job(job["id"], headers)["owner_id"]
    files = JobFiles(stack.database())  # as the browser worker stores them
    url = site.url_for("/catalog/")
    shot = files.put(job["id"], owner, url, "screenshot", "image/png", _png(64, 48))
    files.put(job["id"], owner, url, "pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n")
    log_in(page, stack, username)
    page.goto(f"{stack.base}/jobs/{job['id']}")
    page.wait_for_selector("#files-card:not([hidden])")
    image = page.locator("#files li[data-kind=screenshot] img")
    wait_for(
        lambda: image.evaluate("img => img.complete && img.naturalWidth") == 64, message="thumb"
    )
    link = page.locator("#files li[data-kind=pdf] a")
    assert "/files/" in (link.get_attribute("href") or "") and link.inner_text() == "PDF"
    assert page.inner_text("[data-fact=Files]").startswith("2 (")
    with page.context.expect_page() as opened:
        page.click("#files li[data-kind=screenshot] a")  # the full image, in a new tab
    assert opened.value.url.split("?")[0].endswith(f"/files/{shot['id']}")
    assert page.guard.blocked == []


def test_selector_preview_shows_the_items_before_submitting(page, stack, site, account):
    username, _ = account
    log_in(page, stack, username)
    page.goto(stack.base + "/jobs/new")
    page.fill("input[name=url]", site.url_for("/catalog/page/2"))
    page.select_option("select[name=engine]", "scrapy")
    page.fill("textarea[name=selectors]", "sku: ./@data-sku\ntitle: h2.product-title::text")
    page.fill("input[name=item_selector]", "div.product")
    page.click("#preview-button")
    page.wait_for_selector("#preview[data-count='10']")
    cells = page.locator("#preview-items tbody tr:first-child td").all_inner_texts()
    assert cells == [sku_for(11), "Product 11"]
    assert [h.lower() for h in page.locator("#preview-items thead th").all_inner_texts()] == [
        "sku",
        "title",
    ]
    assert "Catalog page 2" in page.inner_text("#preview-summary")
    # then submitted for real from the same form
    page.click("#job-form button[type=submit]")
    page.wait_for_url(f"{stack.base}/jobs/*")
    page.wait_for_selector("body[data-status='completed']")
    assert page.guard.blocked == []


def test_schedules_and_webhooks_pages(page, stack, site, account):
    username, headers = account
    log_in(page, stack, username)
    page.goto(stack.base + "/schedules")
    page.fill("#schedule-form input[name=name]", "nightly catalog")
    page.fill("#schedule-form input[name=cron]", "30 3 * * *")
    body = f'{{"url": "{site.url_for("/catalog/")}", "engine": "scrapy"}}'
    page.fill("#schedule-form textarea[name=job]", body)
    page.click("#schedule-form button[type=submit]")
    row = page.locator("#schedules tbody tr", has_text="nightly catalog")
    row.wait_for()
    row.get_by_role("button", name="Run now").click()
    page.wait_for_selector("#history tbody tr[data-status]")
    assert "manual" in page.inner_text("#history tbody")

    page.goto(stack.base + "/webhooks")
    page.fill("#webhook-form input[name=webhook_url]", "http://127.0.0.1:9/hook")
    page.click("#webhook-form button[type=submit]")
    page.wait_for_selector("#secret:not([hidden])")
    assert len(page.inner_text("#secret code")) >= 16  # the signing secret, shown once
    hook = page.locator("#webhooks tbody tr", has_text="127.0.0.1:9/hook")
    hook.get_by_role("button", name="Ping").click()
    page.wait_for_selector("#deliveries tbody tr[data-state]")
    assert "ping" in page.inner_text("#deliveries tbody")
    listed = requests.get(stack.url("/webhooks"), headers=headers, timeout=10).json()
    assert [h["webhook_url"] for h in listed] == ["http://127.0.0.1:9/hook"]
    assert page.guard.blocked == []


def test_swagger_ui_lists_every_operation_offline(page, stack):
    document = requests.get(stack.base + "/api/openapi.json", timeout=10).json()
    operations = sum(
        1
        for item in document["paths"].values()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    )
    page.goto(stack.base + "/api/docs")
    page.wait_for_selector(".opblock")
    wait_for(lambda: page.locator(".opblock").count() == operations, message="every operation")
    assert page.locator(".opblock-summary-path", has_text="/api/v1/jobs/preview").count() == 1
    assert page.guard.blocked == []


def test_redoc_renders_offline(page, stack):
    page.goto(stack.base + "/api/redoc")
    page.wait_for_selector("h1")
    assert "ScrapeMaster API" in page.inner_text("h1")
    page.wait_for_selector("li[data-item-id='tag/jobs']")
    assert page.locator("li[data-item-id*='/paths/']").count() > 40
    assert page.guard.blocked == []


def test_the_actions_editor_builds_the_jobs_steps(page, stack, site, account):
    username, headers = account
    log_in(page, stack, username)
    page.goto(stack.base + "/jobs/new")
    page.fill("input[name=url]", site.url_for("/act/search"))
    page.select_option("select[name=engine]", "playwright")
    for _ in range(4):
        page.click("#add-step")
    rows = page.locator("#actions > li")
    rows.nth(0).locator("select").select_option("fill")
    rows.nth(0).locator("[data-field=selector]").fill("input[name=q]")
    rows.nth(0).locator("[data-field=value]").fill("shoes")
    rows.nth(1).locator("select").select_option("wait")
    rows.nth(1).locator("[data-field=milliseconds]").fill("500")
    rows.nth(2).locator("select").select_option("press")
    rows.nth(2).locator("[data-field=key]").fill("Enter")
    rows.nth(3).locator("select").select_option("screenshot")
    rows.nth(3).locator("[data-field=full_page]").check()
    rows.nth(2).locator("button[title='move up']").click()  # press before wait
    rows.nth(0).locator("button[title=remove]").click()  # no fill after all
    page.fill("input[name=next_click]", "button#next")
    page.click("#job-form button[type=submit]")
    page.wait_for_url(lambda url: "/jobs/" in url and not url.endswith("/jobs/new"))
    job = stack.job(page.url.rsplit("/", 1)[-1], headers)
    assert job["config"]["actions"] == [
        {"type": "press", "key": "Enter"},
        {"type": "wait", "milliseconds": 500},
        {"type": "screenshot", "full_page": True},
    ]
    assert job["config"]["next_click"] == "button#next"


def test_the_job_form_takes_a_login_and_its_password_is_stored_sealed(page, stack, account):
    from shared.settings import Settings
    from shared.vault import Vault

    username, headers = account
    log_in(page, stack, username)
    page.goto(stack.base + "/jobs/new")
    page.fill("input[name=url]", "http://127.0.0.1:9/members/")
    page.click("#login-fields summary")
    assert page.get_attribute("input[name=login_password]", "type") == "password"
    page.fill("input[name=login_url]", "http://127.0.0.1:9/members/login")
    page.fill("input[name=login_user]", "alice")
    page.fill("input[name=login_password]", "dashboard-secret-9")
    page.fill("input[name=login_success]", "a.logout")
    page.click("#job-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/jobs/[0-9a-f]{32}$"))
    job_id = page.url.rsplit("/", 1)[-1]
    job = stack.job(job_id, headers)
    assert job["config"]["login"] == {
        "url": "http://127.0.0.1:9/members/login",
        "fields": {"#username": "***", "#password": "***"},
        "success_selector": "a.logout",
    }
    stored = stack.database().jobs.find_one({"_id": job_id})["config"]["login"]["fields"]
    vault = Vault.from_settings(Settings(env="test"))
    assert vault.open(stored["#password"]) == "dashboard-secret-9"
    requests.post(stack.url(f"/jobs/{job_id}/cancel"), headers=headers, timeout=10)
