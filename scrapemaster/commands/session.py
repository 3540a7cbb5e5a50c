"""The login and cookie options of a job body (submit, schedules add): `--login-url`,
`--login-field SEL=VALUE`, `--login-submit`, `--login-success`, `--login FILE.json`, `--cookie`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from scrapemaster.commands.jsonfile import read_json

F = TypeVar("F", bound=Callable[..., Any])

COOKIE_ATTRIBUTES = {"domain", "path", "expires", "secure", "httponly", "samesite"}


def session_options(fn: F) -> F:
    """Add the login and cookie options to a command."""
    options = [
        click.option("--login-url", help="Log in on this page before the crawl (in the browser)."),
        click.option(
            "--login-field",
            "login_fields",
            multiple=True,
            metavar="SEL=VALUE",
            help="A login form field and its value, filled in order (repeat).",
        ),
        click.option("--login-submit", help="The control to click (default: Enter)."),
        click.option("--login-success", help="Present once logged in, else login_failed."),
        click.option(
            "--login",
            "login_file",
            metavar="FILE.json",
            help="The whole login object from a JSON file (keeps secrets out of the history).",
        ),
        click.option(
            "--cookie",
            "cookies",
            multiple=True,
            metavar="'NAME=VALUE; domain=…; path=…'",
            help="A cookie of a session you have (repeat).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def split_field(text: str) -> tuple[str, str]:
    """`SEL=VALUE` split at the first `=` outside brackets and quotes (a selector such as
    `input[name=user]` holds one)."""
    depth, quote = 0, ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth = max(0, depth - 1)
        elif char == "=" and depth == 0 and index:
            return text[:index].strip(), text[index + 1 :]
    raise click.BadParameter(f"{text!r} is not SELECTOR=VALUE", param_hint="--login-field")


def parse_cookie(text: str) -> dict[str, Any]:
    """`NAME=VALUE; domain=example.com; path=/; secure` as a config.cookies entry."""
    first, *rest = [part.strip() for part in text.split(";")]
    name, sep, value = first.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text!r} does not start with NAME=VALUE", param_hint="--cookie")
    cookie: dict[str, Any] = {"name": name.strip(), "value": value.strip()}
    for part in filter(None, rest):
        key, _, val = part.partition("=")
        key = key.strip().lower()
        if key not in COOKIE_ATTRIBUTES:
            raise click.BadParameter(f"unknown cookie attribute {key!r}", param_hint="--cookie")
        if key in ("secure", "httponly"):
            cookie["http_only" if key == "httponly" else key] = True
        elif key == "samesite":
            cookie["same_site"] = val.strip().capitalize()
        elif key == "expires":
            cookie["expires"] = float(val)
        else:
            cookie[key] = val.strip()
    return cookie


def apply_session(
    spec: dict[str, Any],
    login_url: str | None = None,
    login_fields: tuple[str, ...] = (),
    login_submit: str | None = None,
    login_success: str | None = None,
    login_file: str | None = None,
    cookies: tuple[str, ...] = (),
) -> dict[str, Any]:
    """`spec` with the options' login and cookies in its config."""
    config = dict(spec.get("config") or {})
    login: dict[str, Any] = dict(config.get("login") or {})
    if login_file:
        login = read_json(login_file, "--login", dict, "a JSON object (a login)")
    if login_url:
        login["url"] = login_url
    if login_fields:
        login["fields"] = dict(split_field(f) for f in login_fields)
    if login_submit:
        login["submit"] = login_submit
    if login_success:
        login["success_selector"] = login_success
    if login:
        config["login"] = login
    if cookies:
        config["cookies"] = [*(config.get("cookies") or []), *map(parse_cookie, cookies)]
    if config:
        spec["config"] = config
    return spec
