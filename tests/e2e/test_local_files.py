"""No job reads a local file: a canary file named as a `file:` URL every way a job can meet one
(a start URL in any case, a sitemap entry, a link, an iframe, a meta refresh, a script
navigation, a redirect, the preview), in both engines and `auto`, with real workers and a real
Chromium. The canary's text must appear in no result, preview, log, error or event."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import requests

from shared import tasks
from shared.jobs import JobRepository
from testing.helpers import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser]

ENGINES = ("playwright", "scrapy", "auto")


class FileTrapSite:
    """A loopback site whose pages point at `file_url` every way a page can."""

    def __init__(self, file_url: str) -> None:
        self.file_url = file_url
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", site.file_url)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, kind = site.page(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def page(self, path: str) -> tuple[bytes, str]:
        url = self.file_url
        upper = url.replace("file:", "FILE:", 1)
        html = {
            "/ok": "<p>an ordinary page</p>",
            "/link": f'<a href="{url}">secret</a><a href="{upper}">SECRET</a><p>links</p>',
            "/iframe": f'<iframe src="{url}"></iframe><p>frame</p>',
            "/meta": f'<meta http-equiv="refresh" content="0;url={url}"><p>meta</p>',
            "/script": f"<p>script</p><script>location.href = {json.dumps(url)}</script>",
        }
        if path == "/sitemap.xml":
            entries = "".join(
                f"<url><loc>{loc}</loc></url>" for loc in (url, upper, f"{self.url}/ok")
            )
            sitemap = (
                f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
            )
            return sitemap.encode(), "application/xml"
        if path == "/index.xml":  # a sitemap index naming a file: sitemap
            index = (
                '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<sitemap><loc>{url}</loc></sitemap>"
                f"<sitemap><loc>{self.url}/sitemap.xml</loc></sitemap></sitemapindex>"
            )
            return index.encode(), "application/xml"
        if path not in html:
            return b"", "text/plain"
        return f"<html><body>{html[path]}</body></html>".encode(), "text/html"

    def __enter__(self) -> FileTrapSite:
        threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def canary(tmp_path_factory) -> tuple[str, str]:
    """(the file's text, its file: URL); the text is in no URL, path or name."""
    text = f"CANARY-{uuid.uuid4().hex}"
    path = Path(tmp_path_factory.mktemp("secrets")) / "jwt-secret"
    path.write_text(f"{text}\n")
    return text, path.as_uri()


@pytest.fixture(scope="module")
def site(canary) -> Iterator[FileTrapSite]:
    with FileTrapSite(canary[1]) as server:
        yield server


@pytest.fixture(scope="module")
def stack(redis_url, mongo_url, tmp_path_factory, site) -> Iterator[Stack]:
    stack = Stack(
        redis_url, mongo_url, f"files_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("files")
    )
    try:
        stack.start(
            api=True,
            queues=("scrapy", "playwright"),
            PRIVATE_TARGETS="block",
            TARGET_ALLOWLIST=f"127.0.0.1:{site.port}",
        )
        yield stack
    finally:
        stack.stop()


def everything_stored(stack: Stack) -> str:
    """Every document of the stack's database and every Redis entry (events included)."""
    database = stack.database()
    parts = [
        json.dumps(list(database[name].find({})), default=str)
        for name in database.list_collection_names()
    ]
    client = redis.Redis.from_url(stack.redis_url)
    for key in client.scan_iter():
        kind = client.type(key)
        if kind == b"stream":
            parts.append(repr(client.xrange(key)))
        elif kind == b"list":
            parts.append(repr(client.lrange(key, 0, -1)))
        elif kind == b"string":
            parts.append(repr(client.get(key)))
        elif kind == b"hash":
            parts.append(repr(client.hgetall(key)))
    return "\n".join(parts)


def logs(stack: Stack, job_id: str, headers: dict) -> str:
    answer = requests.get(stack.url(f"/jobs/{job_id}/logs"), headers=headers, timeout=10)
    return "\n".join(line["message"] for line in answer.json()["logs"])


def results(stack: Stack, job_id: str, headers: dict) -> list[dict]:
    answer = requests.get(
        stack.url(f"/results/{job_id}"), headers=headers, params={"limit": 100}, timeout=10
    )
    return answer.json()["results"]


EVERY_TEXT = {"pre": "pre::text", "text": "//text()"}


def test_a_file_url_as_start_url_is_refused_in_any_case(stack, canary):
    headers = stack.register()
    url = canary[1]
    for bad in (url, url.replace("file:", "FILE:", 1), url.replace("file:", "File:", 1)):
        for body in ({"url": bad}, {"urls": [bad]}):
            answer = requests.post(stack.url("/jobs"), json=body, headers=headers, timeout=10)
            assert answer.status_code == 422, answer.text
            assert "only http and https" in answer.text
            preview = requests.post(
                stack.url("/jobs/preview"), json=body, headers=headers, timeout=10
            )
            assert preview.status_code == 422, preview.text
    assert canary[0] not in everything_stored(stack)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_stored_file_start_url_fails_without_reading_it(stack, canary, engine):
    """A job that reached the queue without the API's check (an old document, a bug): the
    worker refuses it too."""
    headers = stack.register()
    me = requests.get(stack.url("/auth/me"), headers=headers, timeout=10).json()
    url = canary[1].replace("file:", "FILE:", 1)
    job = JobRepository(stack.database()).create(
        me["id"], {"url": url, "engine": engine, "selectors": EVERY_TEXT, "config": {}}
    )
    stack.celery().send_task(tasks.SCRAPE, **tasks.scrape_options(job))
    done = stack.wait_job(job["_id"], headers, timeout=90)
    assert done["status"] == "failed" and done["error"]["type"] == "blocked_target", done
    assert "only http and https" in done["error"]["message"]
    assert canary[0] not in json.dumps(done) + logs(stack, job["_id"], headers)


@pytest.mark.parametrize("engine", ENGINES)
def test_file_entries_of_a_sitemap_are_skipped_and_logged(stack, site, canary, engine):
    headers = stack.register()
    for start in ("/sitemap.xml", "/index.xml"):
        job = stack.submit(
            headers,
            url=f"{site.url}{start}",
            engine=engine,
            selectors=EVERY_TEXT,
            config={"sitemap": True, "obey_robots": False},
        )
        done = stack.wait_job(job["id"], headers, timeout=120)
        assert done["status"] == "completed", done
        found = results(stack, job["id"], headers)
        assert [row["url"] for row in found] == [f"{site.url}/ok"], found
        text = logs(stack, job["id"], headers)
        assert "skipped sitemap" in text and "only http and https" in text, text
        assert canary[0] not in json.dumps(found) + text + json.dumps(done)


@pytest.mark.parametrize("engine", ENGINES)
def test_pages_pointing_at_a_file_never_read_it(stack, site, canary, engine):
    headers = stack.register()
    paths = ("/link", "/iframe", "/meta", "/script", "/redirect")
    job = stack.submit(
        headers,
        urls=[f"{site.url}{path}" for path in paths],
        engine=engine,
        selectors=EVERY_TEXT,
        config={"follow_links": True, "obey_robots": False, "wait_until": "load"},
    )
    done = stack.wait_job(job["id"], headers, timeout=120)
    assert done["status"] in ("completed", "failed"), done
    found = results(stack, job["id"], headers)
    assert {row["url"] for row in found} >= {f"{site.url}/link", f"{site.url}/iframe"}
    assert canary[0] not in json.dumps(found) + logs(stack, job["id"], headers) + json.dumps(done)


@pytest.mark.parametrize("path", ["/iframe", "/meta", "/script", "/link"])
def test_the_preview_of_a_page_pointing_at_a_file_never_reads_it(stack, site, canary, path):
    headers = stack.register()
    answer = requests.post(
        stack.url("/jobs/preview"),
        json={"url": f"{site.url}{path}", "engine": "playwright", "selectors": EVERY_TEXT},
        headers=headers,
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    assert canary[0] not in answer.text


def test_the_canary_is_nowhere_in_the_store(stack, canary):
    """Last: results, logs, errors, events and previews of every test above, as stored."""
    assert canary[0] not in everything_stored(stack)
