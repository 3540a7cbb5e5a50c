"""A browser page visit's decisions, as pure steps: each looks at what one stage of the visit
saw (the URL, the navigation's error, the response, the rendered page) and says what happens
next. scrapers/playwright_visit.py runs the stages in Chromium and acts on these outcomes;
here nothing needs a browser, so every branch is unit-tested."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from scrapers import failures
from scrapers.egress import BLOCKED_HEADER, ERROR_HEADER, PROXY_ERROR_HEADER
from scrapers.proxies import CONNECTION_BAN
from shared.proxies import is_ban
from shared.schemes import is_web_url, skipped
from shared.targets import BLOCKED_TARGET


class Next(enum.Enum):
    """Where a visit goes after a step."""

    GO_ON = "go on"  # nothing wrong so far: the next stage
    FAIL = "fail"  # the page failed: report `problem` (after the page when `report_page`)


@dataclass(frozen=True)
class VisitOutcome:
    """One step's decision. `ban`: the job's pool proxy is banned for it, and the page is
    tried again through another proxy when the rotation allows (then nothing is reported);
    otherwise the visit goes to `next`. `proxy_ok`: the page counts as the proxy's success."""

    next: Next = Next.GO_ON
    problem: dict[str, str] | None = None
    raw: str = ""  # the browser's own words, for the job log
    report_page: bool = False  # the page answered: it is counted and reported before failing
    ban: str | None = None
    proxy_ok: bool = False
    close_tab: bool = False  # the tab is in an unknown state: the worker opens a new one


GO_ON = VisitOutcome()


def _fail(
    kind: str, message: str, *, report_page: bool = False, ban: str | None = None, ok: bool = False
) -> VisitOutcome:
    problem = {"type": kind, "message": message}
    return VisitOutcome(Next.FAIL, problem, report_page=report_page, ban=ban, proxy_ok=ok)


def gate(url: str) -> VisitOutcome:
    """Before navigating: queued URLs are checked already, this is the last gate."""
    return GO_ON if is_web_url(url) else _fail(BLOCKED_TARGET, skipped(url, "page"))


def navigation_failed(
    problem: dict[str, str],
    raw: str,
    error_text: str,
    refused: str | None,
    egress_problem: dict[str, str] | None,
    pool_proxy_failed: bool,
) -> VisitOutcome:
    """`goto` raised `error_text`: `problem` is it described (rendering.describe_error), `refused`
    the egress guard's refusal of the page's own host, `egress_problem` what the guard met
    reaching it, `pool_proxy_failed` whether the job's pool proxy behind the guard failed."""
    if refused:
        return _fail(BLOCKED_TARGET, refused)
    problem = egress_problem or problem
    through_proxy = (
        problem["type"] in ("timeout", "connection_refused")
        or "PROXY" in error_text
        or pool_proxy_failed
    )
    return VisitOutcome(
        Next.FAIL,
        problem,
        raw,
        ban=f"{CONNECTION_BAN}: {problem['type']}" if through_proxy else None,
        close_tab=problem["type"] == "fetch_error",  # e.g. the tab crashed
    )


@dataclass(frozen=True)
class Response:
    """What navigation gave: the page's URL now, the response's own URL, status, headers
    (lower-case names; a response the guard made up carries its verdict in them)."""

    url: str
    final: str
    response_url: str
    status: int
    headers: Mapping[str, str]


def judge_response(seen: Response, max_page_bytes: int, refused: str | None) -> VisitOutcome:
    """After navigation, before the page settles. `refused`: the guard's refusal of the
    requested URL's host (its sentence), if any."""
    headers, url, final = seen.headers, seen.url, seen.final
    if not is_web_url(final):  # however the tab got there, nothing of it is read
        return _fail(BLOCKED_TARGET, skipped(final, "page"))
    blocked = headers.get(BLOCKED_HEADER.lower())
    if blocked:
        # a redirect led there: name the target refused and why, not just the page
        reason = f"blocked target {seen.response_url}: {blocked}"
        return _fail(BLOCKED_TARGET, refused or f"{url}: {reason}")
    kind = headers.get(PROXY_ERROR_HEADER.lower())
    if kind:
        # the job's pool proxy, behind the egress guard, failed: another proxy may do
        problem = failures.problem(kind, url)
        message = f"Could not fetch {url}: the job's proxy failed ({kind.replace('_', ' ')})."
        return _fail(problem["type"], message, ban=f"{CONNECTION_BAN}: {kind}")
    kind = headers.get(ERROR_HEADER.lower())
    if kind:  # the egress proxy could not reach it: report it as a direct fetch would
        problem = failures.problem(kind, url)
        return _fail(problem["type"], problem["message"])
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_page_bytes:
        return too_large(final, max_page_bytes)
    status = seen.status
    if not 200 <= status < 300:
        problem = failures.http_problem(status, final)
        if is_ban(status):
            ban = f"ban signal: HTTP {status} from {final}"
            return _fail(problem["type"], problem["message"], report_page=True, ban=ban)
        return _fail(problem["type"], problem["message"], report_page=True, ok=True)
    return GO_ON


def too_large(url: str, max_page_bytes: int) -> VisitOutcome:
    message = failures.sentence("page_too_large", url).replace(
        "MAX_PAGE_BYTES", f"MAX_PAGE_BYTES={max_page_bytes}"
    )
    return _fail("page_too_large", message, report_page=True)


def judge_rendered(final: str, dom_size: int, max_page_bytes: int, now_at: str) -> VisitOutcome:
    """Once the page settled: its DOM's size (measured in the page: never copied here) and
    where the tab is now (`now_at`: the page may have navigated itself while it settled)."""
    if dom_size > max_page_bytes:
        return too_large(final, max_page_bytes)
    if not is_web_url(now_at):
        return _fail(BLOCKED_TARGET, skipped(now_at, "page"))
    return GO_ON


def settle_failed(url: str, error_text: str, error_name: str) -> VisitOutcome:
    """Settling or reading the page raised: the tab is closed, the page failed."""
    first = error_text.splitlines()[0] if error_text else error_name
    problem = failures.problem("fetch_error", url)
    return VisitOutcome(Next.FAIL, problem, first, close_tab=True)


def judge_content(status: int, html: str, final: str) -> VisitOutcome:
    """The page's HTML in hand: a captcha page bans the proxy (the page is read when no
    other proxy is left), anything else is the proxy's success."""
    if is_ban(status, html):
        return VisitOutcome(ban=f"ban signal: captcha page at {final}")
    return VisitOutcome(proxy_ok=True)
