"""Bad job input answers 422 in the error shape, never 500, by one set of rules for POST,
PATCH/PUT, preview and schedules; CSV exports neutralise spreadsheet formulas."""

from __future__ import annotations

import csv
import io

import pytest

from shared import items
from testing.helpers import force_status

pytestmark = pytest.mark.integration

JOB = {"url": "http://127.0.0.1:9/catalog/", "selectors": {"title": "h1::text"}}
BAD_KEYS = ["a\u0000b", "$where", "price.amount"]


def assert_422(answer, field: str) -> dict:
    assert answer.status_code == 422, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["type"] == "validation_error" and body["request_id"]
    assert field in body["errors"], body
    return body


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_selector_name_with_nul_dollar_or_dot_is_refused_everywhere(client, auth, db, key):
    selectors = {"title": "h1::text", key: "h2::text"}
    body = {**JOB, "selectors": selectors}
    posted = assert_422(client.post("/api/v1/jobs", json=body, headers=auth), "selectors")
    assert repr(key) in posted["errors"]["selectors"][0]
    assert_422(client.post("/api/v1/jobs/preview", json=body, headers=auth), "selectors")
    schedule = {"name": "s", "cron": "0 * * * *", "job": body}
    assert_422(client.post("/api/v1/schedules", json=schedule, headers=auth), "job.selectors")
    assert db.jobs.count_documents({}) == 0 and db.schedules.count_documents({}) == 0

    job_id = client.post("/api/v1/jobs", json=JOB, headers=auth).get_json()["id"]
    for method in (client.patch, client.put):
        answer = method(f"/api/v1/jobs/{job_id}", json={"selectors": selectors}, headers=auth)
        assert_422(answer, "selectors")
    assert db.jobs.find_one({"_id": job_id})["selectors"] == JOB["selectors"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_header_name_with_nul_dollar_or_dot_is_refused(client, auth, key):
    body = {**JOB, "config": {"headers": {key: "v"}}}
    assert_422(client.post("/api/v1/jobs", json=body, headers=auth), "config.headers")


def test_keys_that_merely_contain_dollar_later_are_fine(client, auth):
    body = {**JOB, "selectors": {"price_$": "span::text", "naïve name": "h1::text"}}
    assert client.post("/api/v1/jobs", json=body, headers=auth).status_code == 201


def test_patch_refuses_what_post_refuses_too_many_urls(client, auth, db, settings):
    limit = settings.max_urls_per_job
    urls = [f"http://127.0.0.1:9/p/{i}" for i in range(limit + 1)]
    assert_422(client.post("/api/v1/jobs", json={**JOB, "urls": urls}, headers=auth), "urls")
    job_id = client.post("/api/v1/jobs", json=JOB, headers=auth).get_json()["id"]
    for method in (client.patch, client.put):
        answer = method(f"/api/v1/jobs/{job_id}", json={"urls": urls * 50}, headers=auth)
        assert_422(answer, "urls")
    assert db.jobs.find_one({"_id": job_id})["urls"] == [JOB["url"]]
    fine = client.patch(f"/api/v1/jobs/{job_id}", json={"urls": urls[:limit]}, headers=auth)
    assert fine.status_code == 200 and len(fine.get_json()["urls"]) == limit


def test_patch_checks_the_merged_job_by_the_submit_rules(client, auth, db, settings):
    job_id = client.post("/api/v1/jobs", json=JOB, headers=auth).get_json()["id"]
    too_many = {"config": {"max_pages": settings.max_pages_cap + 1}}
    assert_422(
        client.patch(f"/api/v1/jobs/{job_id}", json=too_many, headers=auth), "config.max_pages"
    )
    unknown = client.patch(f"/api/v1/jobs/{job_id}", json={"engine": "scrapy"}, headers=auth)
    assert_422(unknown, "engine")  # not a field a pending job's change may touch
    changed = client.patch(
        f"/api/v1/jobs/{job_id}", json={"url": "http://127.0.0.1:9/other/"}, headers=auth
    ).get_json()
    assert (
        changed["urls"] == ["http://127.0.0.1:9/other/"]
        and changed["selectors"] == JOB["selectors"]
    )


def test_a_schedule_patch_of_its_job_body_follows_the_same_rules(client, auth, settings):
    made = client.post(
        "/api/v1/schedules", json={"name": "s", "cron": "0 * * * *", "job": JOB}, headers=auth
    ).get_json()
    urls = [f"http://127.0.0.1:9/p/{i}" for i in range(settings.max_urls_per_job + 1)]
    for job in ({**JOB, "urls": urls}, {**JOB, "selectors": {"$gt": "h1::text"}}):
        answer = client.patch(f"/api/v1/schedules/{made['id']}", json={"job": job}, headers=auth)
        assert answer.status_code == 422 and answer.get_json()["type"] == "validation_error"


# -- CSV exports -------------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\tx"]


def _job_with_items(client, auth, db, rows: list[dict]) -> str:
    body = {**JOB, "selectors": {"=cmd": "h1::text", "name": "h2::text"}}
    job_id = client.post("/api/v1/jobs", json=body, headers=auth).get_json()["id"]
    force_status(db, job_id, "completed", items_scraped=len(rows))
    items.write(db, job_id, rows)
    return job_id


def _csv_text(client, auth, job_id: str, **query: str) -> str:
    answer = client.get(
        f"/api/v1/results/{job_id}/export", query_string={"format": "csv", **query}, headers=auth
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_data(as_text=True)


def _csv(client, auth, job_id: str, **query: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_csv_text(client, auth, job_id, **query), newline="")))


def test_csv_cells_a_spreadsheet_would_run_are_neutralised_by_default(client, auth, db):
    rows = [{"=cmd": value, "name": "plain"} for value in FORMULAS]
    job_id = _job_with_items(client, auth, db, rows)
    table = _csv(client, auth, job_id)
    assert table[0][:2] == ["'=cmd", "name"]  # a header is a cell too
    assert [r[0] for r in table[1:]] == ["'" + v for v in FORMULAS]
    assert {r[1] for r in table[1:]} == {"plain"}
    raw = _csv(client, auth, job_id, csv_formulas="raw")
    assert raw[0][:2] == ["=cmd", "name"] and [r[0] for r in raw[1:]] == FORMULAS
    bad = client.get(
        f"/api/v1/results/{job_id}/export",
        query_string={"format": "csv", "csv_formulas": "maybe"},
        headers=auth,
    )
    assert_422(bad, "csv_formulas")


def test_a_cell_starting_with_a_carriage_return_is_neutralised(client, auth, db):
    job_id = _job_with_items(client, auth, db, [{"=cmd": "\r=1+1", "name": "n"}])
    assert "\n'\r=1+1,n," in _csv_text(client, auth, job_id)


def test_json_exports_keep_values_as_scraped(client, auth, db):
    job_id = _job_with_items(client, auth, db, [{"=cmd": FORMULAS[0], "name": "-1"}])
    rows = client.get(
        f"/api/v1/results/{job_id}/export", query_string={"format": "json"}, headers=auth
    ).get_json()
    assert rows[0]["data"] == {"=cmd": FORMULAS[0], "name": "-1"}


def test_the_python_client_exports_defused_or_raw_cells(app, client, auth, db):
    import httpx

    from scrapemaster import Client

    job_id = _job_with_items(client, auth, db, [{"=cmd": "=1+1", "name": "@x"}])
    token = auth["Authorization"].split()[1]
    http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://127.0.0.1")
    with Client("http://127.0.0.1", token=token, http=http) as api:
        safe, raw = io.BytesIO(), io.BytesIO()
        api.results.export(job_id, safe, format="csv")
        api.results.export(job_id, raw, format="csv", csv_formulas="raw")
    assert safe.getvalue().decode().splitlines()[1].startswith("'=1+1,'@x,")
    assert raw.getvalue().decode().splitlines()[1].startswith("=1+1,@x,")


# -- refusals name their cause ------------------------------------------------------------------


def test_a_job_aimed_at_the_services_own_port_says_so(client, auth, settings):
    assert settings.is_local  # PRIVATE_TARGETS allows loopback here: that is not the reason
    own = f"http://127.0.0.1:{settings.api_port}/api/v1/health"
    body = assert_422(client.post("/api/v1/jobs", json={**JOB, "url": own}, headers=auth), "url")
    message = body["errors"]["url"][0]
    assert "port of this ScrapeMaster service itself" in message
    assert "PRIVATE_TARGETS=block" not in message
    metadata = {**JOB, "url": "http://169.254.169.254/latest/meta-data/"}
    body = assert_422(client.post("/api/v1/jobs", json=metadata, headers=auth), "url")
    assert "cloud-metadata" in body["errors"]["url"][0]


@pytest.mark.parametrize(
    "url", ["file:///etc/hostname", "FTP://127.0.0.1/x", "javascript:alert(1)"]
)
def test_a_refused_scheme_is_named(client, auth, url):
    body = assert_422(client.post("/api/v1/jobs", json={**JOB, "url": url}, headers=auth), "url")
    scheme = url.split(":", 1)[0].lower()
    assert f"{scheme}: is refused" in body["errors"]["url"][0]


def test_bad_actions_answer_422_naming_each_bad_step(client, auth, db):
    actions = [
        {"type": "click", "selector": "button.accept"},
        {"type": "click"},
        {"type": "wait", "milliseconds": 30001},
        {"type": "teleport"},
        {"type": "fill", "selector": "input", "value": "x", "extra": 1},
        {"type": "wait", "selector": "div", "milliseconds": 5},
        {"type": "scroll", "times": 0},
        {"type": "press", "key": ""},
        {"type": "click", "selector": "jmespath:items"},
    ]
    body = {**JOB, "config": {"actions": actions, "next_click": "li.next >>> a"}}
    errors = assert_422(client.post("/api/v1/jobs", json=body, headers=auth), "config.actions.1")
    errors = errors["errors"]
    assert "config.actions.0" not in errors
    assert errors["config.actions.1"] == ["step 2: click needs selector."]
    assert "milliseconds must be an integer from 0 to 30000" in errors["config.actions.2"][0]
    assert "type must be one of click, fill, press" in errors["config.actions.3"][0]
    assert "fill takes no field 'extra'" in errors["config.actions.4"][0]
    assert "either a selector or milliseconds" in errors["config.actions.5"][0]
    assert "times must be an integer from 1" in errors["config.actions.6"][0]
    assert "key must not be empty" in errors["config.actions.7"][0]
    assert "CSS or XPath" in errors["config.actions.8"][0]
    assert "config.next_click" in errors
    too_many = {**JOB, "config": {"actions": [{"type": "wait", "milliseconds": 1}] * 51}}
    answer = client.post("/api/v1/jobs", json=too_many, headers=auth)
    assert assert_422(answer, "config.actions")["errors"]["config.actions"] == ["at most 50 steps"]
    assert_422(client.post("/api/v1/jobs/preview", json=body, headers=auth), "config.actions.1")
    assert db.jobs.count_documents({}) == 0


def test_actions_and_next_click_are_stored_and_send_auto_to_the_browser(client, auth, db):
    actions = [
        {"type": "fill", "selector": "input[name=q]", "value": "shoes"},
        {"type": "press", "key": "Enter"},
        {"type": "wait", "milliseconds": 500},
        {"type": "screenshot", "full_page": True},
        {"type": "evaluate", "script": "window.scrollTo(0, 0)", "timeout_seconds": 5},
    ]
    body = {**JOB, "config": {"actions": actions, "next_click": "button#next"}}
    answer = client.post("/api/v1/jobs", json=body, headers=auth)
    assert answer.status_code == 201, answer.get_json()
    job = answer.get_json()
    assert job["config"]["actions"] == actions and job["config"]["next_click"] == "button#next"
    stored = db.jobs.find_one({"_id": job["id"]})
    assert stored["queue"] == "playwright"
    assert "need a browser" in stored["auto_decision"]["reason"]


def test_a_scrapy_job_cannot_ask_for_actions_or_next_click(client, auth):
    body = {**JOB, "engine": "scrapy", "config": {"next_click": "button#next"}}
    errors = assert_422(client.post("/api/v1/jobs", json=body, headers=auth), "config.next_click")
    assert errors["errors"]["config.next_click"] == [
        "next_click needs the browser: use engine auto or playwright."
    ]
