"""Pure parts of the client and CLI: job bodies from options, API URLs, error lines, the
credentials file, and a client that loads no server code."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import click
import httpx
import pytest

from scrapemaster import config
from scrapemaster.commands.common import build_spec
from scrapemaster.errors import ServerError, ValidationFailed, error_from
from scrapemaster.transport import api_root

NO_OPTIONS = dict(
    urls=(),
    engine=None,
    selectors=(),
    item_selector=None,
    follow=None,
    link_selector=None,
    max_pages=None,
    max_depth=None,
    timeout_seconds=None,
    priority=None,
)


def test_options_amend_the_job_file(tmp_path):
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"url": "https://a.example/", "selectors": {"t": "h1::text"},
                                "config": {"max_pages": 5, "obey_robots": False}}))  # fmt: skip
    spec = build_spec(
        str(path),
        **{
            **NO_OPTIONS,
            "selectors": ("price=span.price::text",),
            "link_selector": "li.next a",
            "max_pages": 9,
            "priority": "7",
        },
    )
    assert spec["selectors"] == {"t": "h1::text", "price": "span.price::text"}
    assert spec["config"] == {
        "max_pages": 9,
        "obey_robots": False,
        "link_selector": "li.next a",
        "follow_links": True,
    }
    assert spec["priority"] == 7 and spec["url"] == "https://a.example/"


def test_several_urls_and_bad_options_are_refused_clearly(tmp_path):
    spec = build_spec(None, **{**NO_OPTIONS, "urls": ("https://a.example/", "https://b.example/")})
    assert spec["urls"] == ["https://a.example/", "https://b.example/"] and "url" not in spec
    with pytest.raises(click.UsageError, match="--url"):
        build_spec(None, **NO_OPTIONS)
    with pytest.raises(click.BadParameter, match="NAME=SELECTOR"):
        build_spec(None, **{**NO_OPTIONS, "urls": ("https://a.example/",), "selectors": ("x",)})
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(click.BadParameter, match="JSON object"):
        build_spec(str(tmp_path / "list.json"), **NO_OPTIONS)


@pytest.mark.parametrize(
    "given",
    ["http://h:8000", "http://h:8000/", "http://h:8000/api/v1", "http://h:8000/api/v1/"],
)
def test_the_api_root_is_found_from_any_spelling(given):
    assert api_root(given) == "http://h:8000/api/v1"


def test_an_error_answer_becomes_one_line_with_fields_and_request_id():
    body = {
        "detail": "Invalid input: config.max_pages",
        "type": "validation_error",
        "errors": {"config.max_pages": ["Must be between 1 and 10000."]},
        "request_id": "abc123",
    }
    error = error_from(httpx.Response(422, json=body))
    assert isinstance(error, ValidationFailed) and error.request_id == "abc123"
    assert error.describe() == (
        "Invalid input: config.max_pages (config.max_pages: Must be between 1 and 10000.) "
        "[422 validation_error, request abc123]"
    )
    proxy = error_from(httpx.Response(502, text="<html>Bad Gateway</html>"))
    assert isinstance(proxy, ServerError) and proxy.detail.startswith("HTTP 502 Bad Gateway")


def test_credentials_are_kept_per_api_in_a_private_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    config.save_login("http://a/api/v1", "acc", "ref", "alice", make_default=True)
    config.save_login("http://b/api/v1", "acc2", None)
    path = tmp_path / "scrapemaster" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.login_for("http://a/api/v1")["refresh_token"] == "ref"
    assert config.default_api() == "http://a/api/v1"
    assert config.forget("http://a/api/v1") and config.login_for("http://a/api/v1") is None
    assert config.default_api() is None and config.login_for("http://b/api/v1")


def test_the_client_and_cli_load_no_server_code():
    probe = (
        "import sys, scrapemaster, scrapemaster.cli; "
        "bad = [m for m in ('api', 'shared', 'workers', 'scrapers', 'flask', 'celery', "
        "'scrapy', 'playwright', 'pymongo', 'redis') if m in sys.modules]; print(bad)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_actions_and_next_click_options_go_into_the_config(tmp_path):
    listed = tmp_path / "steps.json"
    listed.write_text('[{"type": "fill", "selector": "input[name=q]", "value": "shoes"}]')
    spec = build_spec(
        None,
        **{
            **NO_OPTIONS,
            "urls": ("https://a.example/",),
            "actions_file": str(listed),
            "actions": ('{"type": "press", "key": "Enter"}',),
            "next_click": "button.next",
        },
    )
    assert spec["config"] == {
        "actions": [
            {"type": "fill", "selector": "input[name=q]", "value": "shoes"},
            {"type": "press", "key": "Enter"},
        ],
        "next_click": "button.next",
    }
    with pytest.raises(click.BadParameter, match="must be a JSON object"):
        build_spec(None, **{**NO_OPTIONS, "urls": ("https://a.example/",), "actions": ("[1]",)})


ONE_URL = {**NO_OPTIONS, "urls": ("https://a.example/",)}


def test_login_and_cookie_options_make_the_config_login_and_cookies(tmp_path):
    spec = build_spec(
        None,
        **{**NO_OPTIONS, "urls": ("https://a.example/",)},
        login_url="https://a.example/login",
        login_fields=("input[name=user]=me", "#password=p=ss word"),
        login_submit="button[type=submit]",
        login_success="a.logout",
        cookies=("sid=abc; domain=.a.example; path=/app; secure; samesite=strict",),
    )
    assert spec["config"]["login"] == {
        "url": "https://a.example/login",
        "fields": {"input[name=user]": "me", "#password": "p=ss word"},
        "submit": "button[type=submit]",
        "success_selector": "a.logout",
    }
    assert spec["config"]["cookies"] == [
        {"name": "sid", "value": "abc", "domain": ".a.example", "path": "/app", "secure": True,
         "same_site": "Strict"}
    ]  # fmt: skip
    path = tmp_path / "login.json"
    path.write_text(json.dumps({"url": "https://a.example/in", "fields": {"#u": "x"}}))
    spec = build_spec(None, **ONE_URL, login_file=str(path))
    assert spec["config"]["login"] == {"url": "https://a.example/in", "fields": {"#u": "x"}}
    with pytest.raises(click.BadParameter, match="SELECTOR=VALUE"):
        build_spec(None, **ONE_URL, login_fields=("#u",))
    with pytest.raises(click.BadParameter, match="NAME=VALUE"):
        build_spec(None, **ONE_URL, cookies=("nothing",))
