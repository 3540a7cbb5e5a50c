"""What every command shares: exit codes, the client from env or the stored login, options."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from scrapemaster import config
from scrapemaster.client import DEFAULT_API, Client
from scrapemaster.commands.jsonfile import read_json
from scrapemaster.commands.session import apply_session, session_options
from scrapemaster.transport import api_root

# Exit codes (docs/guide/cli.md § Errors and exit codes)
OK = 0
JOB_FAILED = 1  # the job ended failed or cancelled
USAGE = 2  # bad options or arguments, an unreadable job file, an unwritable output file
API_ERROR = 3  # the API refused: not found, conflict, invalid input, server error
AUTH = 4  # not logged in, a bad or expired token or API key, not allowed
CONNECTION = 5  # the API could not be reached, or a stream broke for good
INTERNAL = 70  # a bug in the CLI (SCRAPEMASTER_DEBUG=1 shows the traceback)
INTERRUPTED = 130  # Ctrl-C

F = TypeVar("F", bound=Callable[..., Any])


class State:
    """The chosen API and credentials; builds one Client on first use."""

    def __init__(self, api: str | None, token: str | None) -> None:
        chosen = api or os.environ.get("SCRAPEMASTER_API") or config.default_api() or DEFAULT_API
        try:
            self.api = api_root(chosen)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--api / SCRAPEMASTER_API") from None
        self.token = token or os.environ.get("SCRAPEMASTER_TOKEN") or None
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._build()
        return self._client

    def _build(self) -> Client:
        if self.token:
            return Client(self.api, token=self.token)
        stored = config.login_for(self.api)
        if stored:
            return Client(
                self.api,
                token=stored["access_token"],
                refresh_token=stored.get("refresh_token"),
                on_tokens=lambda access, refresh: config.save_login(self.api, access, refresh),
            )
        return Client(self.api)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


pass_state = click.make_pass_decorator(State)


def json_option(fn: F) -> F:
    """--json: print the API's JSON instead of text, for scripts."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    found = {}
    for value in values:
        name, sep, selector = value.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r} is not NAME=SELECTOR", param_hint=option)
        found[name.strip()] = selector
    return found


def read_spec(file: str | None) -> dict[str, Any]:
    """A job body from a JSON file (`-`: standard input); {} without one."""
    if not file:
        return {}
    spec: dict[str, Any] = read_json(file, "FILE", dict, "a JSON object (a job)")
    return spec


def read_actions(steps: tuple[str, ...], file: str | None) -> list[Any] | None:
    """Browser steps from --actions-file (a JSON list) then each --action (a JSON object);
    None when neither is given. The API checks each step (422 naming it)."""
    if not steps and not file:
        return None
    found: list[Any] = []
    if file:
        listed = read_json(file, "--actions-file", list, "a JSON list of steps")
        found += listed
    for text in steps:
        try:
            step = json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}: {text}", param_hint="--action") from None
        if not isinstance(step, dict):
            raise click.BadParameter(f"must be a JSON object: {text}", param_hint="--action")
        found.append(step)
    return found


def job_options(fn: F) -> F:
    """The options that make or amend a job body (submit, schedules add)."""
    options = [
        click.argument("file", required=False, metavar="[FILE.json]"),
        click.option("--url", "urls", multiple=True, help="Start URL (repeat for several)."),
        click.option("--engine", type=click.Choice(["auto", "scrapy", "playwright"])),
        click.option(
            "--selector",
            "-s",
            "selectors",
            multiple=True,
            metavar="NAME=SEL",
            help="A field and its CSS or XPath selector (repeat).",
        ),
        click.option("--item-selector", help="One item per match; selectors are relative to it."),
        click.option("--follow/--no-follow", default=None, help="Follow links (pagination)."),
        click.option("--link-selector", help="Which links to follow (implies --follow)."),
        click.option("--max-pages", type=click.IntRange(min=1), help="Hard cap on pages."),
        click.option("--max-depth", type=click.IntRange(min=0)),
        click.option("--timeout", "timeout_seconds", type=click.IntRange(min=1), help="Seconds."),
        click.option("--priority", help="low, normal, high or 0-9."),
        click.option(
            "--action",
            "actions",
            multiple=True,
            metavar="JSON",
            help='A browser step, e.g. \'{"type": "click", "selector": "button.more"}\' (repeat).',
        ),
        click.option(
            "--actions-file",
            metavar="FILE.json",
            help="A JSON list of browser steps (- for stdin); --action steps come after them.",
        ),
        click.option("--next-click", help="Paginate by clicking this selector after each page."),
    ]
    fn = session_options(fn)  # listed after these
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_spec(
    file: str | None,
    urls: tuple[str, ...],
    engine: str | None,
    selectors: tuple[str, ...],
    item_selector: str | None,
    follow: bool | None,
    link_selector: str | None,
    max_pages: int | None,
    max_depth: int | None,
    timeout_seconds: int | None,
    priority: str | None,
    actions: tuple[str, ...] = (),
    actions_file: str | None = None,
    next_click: str | None = None,
    **session: Any,
) -> dict[str, Any]:
    """The job body: FILE.json, amended by the options given (`session`: the login and cookie
    options, scrapemaster/commands/session.py)."""
    spec = read_spec(file)
    if len(urls) == 1:
        spec["url"] = urls[0]
        spec.pop("urls", None)
    elif urls:
        spec["urls"] = list(urls)
        spec.pop("url", None)
    if not spec.get("url") and not spec.get("urls"):
        raise click.UsageError("give a job file (FILE.json) or --url")
    if engine:
        spec["engine"] = engine
    if priority is not None:
        spec["priority"] = int(priority) if priority.isdigit() else priority
    if selectors:
        spec["selectors"] = {**(spec.get("selectors") or {}), **_pairs(selectors, "--selector")}
    settings: dict[str, Any] = {
        "item_selector": item_selector,
        "link_selector": link_selector,
        "follow_links": True if link_selector and follow is None else follow,
        "max_pages": max_pages,
        "max_depth": max_depth,
        "timeout_seconds": timeout_seconds,
        "actions": read_actions(actions, actions_file),
        "next_click": next_click,
    }
    settings = {k: v for k, v in settings.items() if v is not None}
    if settings:
        spec["config"] = {**(spec.get("config") or {}), **settings}
    return apply_session(spec, **session)
