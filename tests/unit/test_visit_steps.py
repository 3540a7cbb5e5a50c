"""A browser page visit's decisions (scrapers/visit_steps.py), without Chromium: what a
navigation error, the egress guard's verdict headers, a status, a size or a captcha page
make of the visit."""

from __future__ import annotations

from scrapers import failures
from scrapers.egress import BLOCKED_HEADER, ERROR_HEADER, PROXY_ERROR_HEADER
from scrapers.proxies import CONNECTION_BAN
from scrapers.visit_steps import (
    GO_ON,
    Next,
    Response,
    gate,
    judge_content,
    judge_rendered,
    judge_response,
    navigation_failed,
    settle_failed,
)
from shared.targets import BLOCKED_TARGET

URL = "http://127.0.0.1:8000/p"
LIMIT = 10_000


def response(status: int = 200, final: str = URL, **headers: str) -> Response:
    return Response(URL, final, final, status, {k.lower(): v for k, v in headers.items()})


def test_only_web_urls_pass_the_gate():
    assert gate(URL) is GO_ON
    step = gate("file:///etc/passwd")
    assert step.next is Next.FAIL and step.problem is not None
    assert step.problem["type"] == BLOCKED_TARGET and "file:" in step.problem["message"]
    assert not step.report_page and step.ban is None


def test_a_navigation_the_guard_refused_is_a_blocked_target_and_no_ban():
    problem = failures.problem("connection_refused", URL)
    step = navigation_failed(problem, "net::ERR_X", "net::ERR_X", "refused: private", None, True)
    assert step.problem == {"type": BLOCKED_TARGET, "message": "refused: private"}
    assert step.ban is None


def test_timeouts_and_refusals_ban_the_pool_proxy_other_errors_do_not():
    for kind in ("timeout", "connection_refused"):
        step = navigation_failed(failures.problem(kind, URL), "raw", "raw", None, None, False)
        assert step.next is Next.FAIL and step.ban == f"{CONNECTION_BAN}: {kind}"
        assert step.problem is not None and step.problem["type"] == kind and step.raw == "raw"
    dns = failures.problem("dns_error", URL)
    assert navigation_failed(dns, "raw", "raw", None, None, False).ban is None
    # Chromium's own word for a proxy failure, or the guard saying the pool proxy failed
    text = "net::ERR_PROXY_CONNECTION_FAILED at http://x/"
    assert navigation_failed(dns, "raw", text, None, None, False).ban is not None
    assert (
        navigation_failed(dns, "raw", "raw", None, None, True).ban == f"{CONNECTION_BAN}: dns_error"
    )


def test_what_the_guard_met_replaces_the_browsers_vaguer_error():
    vague = failures.problem("fetch_error", URL)
    met = failures.problem("dns_error", URL)
    step = navigation_failed(vague, "raw", "raw", None, met, False)
    assert step.problem == met and not step.close_tab
    # a fetch_error of the tab itself (it crashed): the worker opens another tab
    assert navigation_failed(vague, "raw", "raw", None, None, False).close_tab


def test_a_good_response_goes_on():
    assert judge_response(response(), LIMIT, None) is GO_ON
    assert judge_response(response(**{"Content-Length": str(LIMIT)}), LIMIT, None) is GO_ON


def test_a_tab_that_ended_off_the_web_is_refused():
    step = judge_response(response(final="chrome-error://chromewebdata/"), LIMIT, None)
    assert step.problem is not None and step.problem["type"] == BLOCKED_TARGET


def test_a_redirect_to_a_refused_target_names_the_target_and_why():
    seen = Response(
        URL, URL, "http://169.254.169.254/", 403, {BLOCKED_HEADER.lower(): "link-local"}
    )
    step = judge_response(seen, LIMIT, None)
    assert step.problem == {
        "type": BLOCKED_TARGET,
        "message": f"{URL}: blocked target http://169.254.169.254/: link-local",
    }
    assert not step.report_page and step.ban is None
    # the guard's own sentence for the page's host, when it has one
    assert judge_response(seen, LIMIT, "its sentence").problem == {
        "type": BLOCKED_TARGET,
        "message": "its sentence",
    }


def test_a_failed_pool_proxy_is_a_ban_and_says_so():
    step = judge_response(response(502, **{PROXY_ERROR_HEADER: "connection_refused"}), LIMIT, None)
    assert step.next is Next.FAIL and step.ban == f"{CONNECTION_BAN}: connection_refused"
    assert step.problem is not None and step.problem["type"] == "connection_refused"
    assert "the job's proxy failed (connection refused)" in step.problem["message"]
    assert not step.report_page


def test_what_the_guard_could_not_reach_reads_as_a_direct_fetch_would():
    step = judge_response(response(502, **{ERROR_HEADER: "dns_error"}), LIMIT, None)
    assert step.problem == failures.problem("dns_error", URL)
    assert step.ban is None and not step.report_page


def test_a_declared_size_over_the_limit_reports_the_page_and_fails_it():
    step = judge_response(response(**{"Content-Length": str(LIMIT + 1)}), LIMIT, None)
    assert step.next is Next.FAIL and step.report_page
    assert step.problem is not None and step.problem["type"] == "page_too_large"
    assert f"MAX_PAGE_BYTES={LIMIT}" in step.problem["message"]


def test_ban_statuses_ban_the_proxy_other_errors_count_as_its_success():
    for status in (403, 429):
        step = judge_response(response(status), LIMIT, None)
        assert step.ban == f"ban signal: HTTP {status} from {URL}" and not step.proxy_ok
        assert step.report_page and step.problem == failures.http_problem(status, URL)
    step = judge_response(response(404), LIMIT, None)
    assert step.ban is None and step.proxy_ok and step.report_page
    assert step.problem == failures.http_problem(404, URL)


def test_a_rendered_page_too_large_or_gone_elsewhere_fails():
    assert judge_rendered(URL, LIMIT, LIMIT, URL) is GO_ON
    big = judge_rendered(URL, LIMIT + 1, LIMIT, URL)
    assert big.report_page and big.problem is not None
    assert big.problem["type"] == "page_too_large"
    away = judge_rendered(URL, 10, LIMIT, "file:///etc/passwd")
    assert away.problem is not None and away.problem["type"] == BLOCKED_TARGET


def test_an_error_while_settling_closes_the_tab():
    step = settle_failed(URL, "Target crashed\nmore", "Error")
    assert step.close_tab and step.raw == "Target crashed"
    assert step.problem == failures.problem("fetch_error", URL)
    assert settle_failed(URL, "", "Error").raw == "Error"


def test_a_captcha_page_bans_the_proxy_but_is_read_when_none_is_left():
    captcha = "<html><title>Attention Required</title><div class='g-recaptcha'></div></html>"
    step = judge_content(200, captcha, URL)
    assert step.next is Next.GO_ON and step.ban == f"ban signal: captcha page at {URL}"
    ok = judge_content(200, "<html><p>hello</p></html>", URL)
    assert ok.next is Next.GO_ON and ok.proxy_ok and ok.ban is None
