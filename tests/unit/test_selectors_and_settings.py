"""Selector parsing, URL rules and settings: pure logic, no services."""

from __future__ import annotations

import pytest

from shared.jobspec import resolve_config, url_problem
from shared.selectors import compile_selector, validate_selectors
from shared.settings import Settings, SettingsError
from shared.tasks import celery_priority


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("h1::text", "css"),
        ("a::attr(href)", "css"),
        ("//h1", "xpath"),
        ("(//a)[1]", "xpath"),
        ("./@data-sku", "xpath"),
        ("jmespath:items[*]", "jmespath"),
        ("jmespath: data.products[?price > `10`].sku", "jmespath"),
    ],
)
def test_selectors_that_parse(query, kind):
    assert compile_selector(query).kind == kind


@pytest.mark.parametrize(
    "query", ["h1[", "//h1[", "a::nope", "", "   ", "jmespath:", "jmespath:items[", "jmespath:a..b"]
)
def test_selectors_that_do_not_parse_name_the_field(query):
    assert list(validate_selectors({"title": query})) == ["title"]


@pytest.mark.parametrize(
    "url", ["ftp://x.org/", "javascript:alert(1)", "http://", "not a url", "http://a b/", ""]
)
def test_urls_that_cannot_be_crawled(url):
    assert url_problem(url)


def test_http_urls_are_fine():
    assert url_problem("https://example.com/a?b=c") is None
    assert url_problem("http://127.0.0.1:8080/catalog/") is None


def test_config_defaults_fill_what_the_user_left_out():
    config = resolve_config({"max_pages": 3})
    assert config["max_pages"] == 3 and config["obey_robots"] is True
    assert config["follow_links"] is False and config["max_depth"] is None


def test_production_api_refuses_to_start_without_a_jwt_secret():
    worker = Settings.from_env({"ENV": "production", "MONGO_URL": "mongodb://db"})
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        worker.api_jwt_secret()  # workers run without it; the API may not
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        Settings.from_env({"ENV": "production", "MONGO_URL": "m://db", "JWT_SECRET_KEY": "short"})
    ok = Settings.from_env(
        {"ENV": "production", "MONGO_URL": "mongodb://db", "JWT_SECRET_KEY": "x" * 40}
    )
    assert ok.api_jwt_secret() == "x" * 40


def test_local_mode_generates_one_secret_per_install(tmp_path):
    first = Settings.from_env({}, env="local", var_dir=str(tmp_path / "a"))
    secret = first.api_jwt_secret()
    assert len(secret) >= 48 and secret == first.api_jwt_secret()
    assert (tmp_path / "a" / "jwt-secret").stat().st_mode & 0o777 == 0o600
    other = Settings.from_env({}, env="local", var_dir=str(tmp_path / "b"))
    assert other.api_jwt_secret() != secret
    user, password = first.flower_basic_auth().split(":", 1)
    assert user == "admin" and len(password) >= 20
    assert first.flower_basic_auth() == f"admin:{password}"
    with pytest.raises(SettingsError, match="FLOWER_PASSWORD"):
        Settings.from_env({}, env="production", mongo_url="m://db").flower_basic_auth()


def test_env_values_are_typed_and_bad_ones_fail_fast():
    s = Settings.from_env({"API_PORT": "9001", "RATE_LIMIT_ENABLED": "false"})
    assert s.api_port == 9001 and s.rate_limit_enabled is False
    with pytest.raises(SettingsError, match="API_PORT"):
        Settings.from_env({"API_PORT": "eighty"})


def test_embedded_mongo_is_used_when_no_url_is_given():
    s = Settings.from_env({"EMBEDDED_MONGO_PORT": "27999"})
    assert s.effective_mongo_url.startswith("mongodb://127.0.0.1:27999/")


def test_highest_job_priority_is_served_first_by_redis():
    assert celery_priority(9) == 0 and celery_priority(0) == 9


@pytest.mark.parametrize(
    "query",
    [
        '//p[re:test(text(),"^(a+)+$")]',
        "//a[set:distinct(.)]",
        '//p[str:tokenize(., ",")]',
        '(//p)[re:match(., "(x+x+)+y")]',
    ],
)
def test_selectors_with_extension_functions_are_refused(query):
    with pytest.raises(ValueError, match="extension function"):
        compile_selector(query)


def test_ordinary_xpath_with_colons_in_strings_or_axes_is_fine():
    assert compile_selector('//a[contains(@href, "re:test(")]').kind == "xpath"
    assert compile_selector("//div/child::span").kind == "xpath"
    assert compile_selector("//svg:path").kind == "xpath"  # a name test, not a call
