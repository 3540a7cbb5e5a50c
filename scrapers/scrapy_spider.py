"""The spider of one static job: what it fetches (rules, sitemaps), what it reads from each
page, how `auto` decides on the first page, and how a failed request is told to a person."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from scrapers import charsets, extract, failures
from scrapers.auto import browser_options, figures, static_verdict
from scrapers.crawl_rules import MAX_SITEMAPS, LinkRules, Seen, clean_url, read_sitemap
from scrapers.engine import Sink
from scrapers.pages import PageProblems, read_page
from scrapers.proxies import Rotation, TargetRefused
from scrapers.resolver import blocked_reason
from shared.jobspec import JobSpec
from shared.schemes import is_web_url, skipped
from shared.targets import BLOCKED_TARGET, redact_url

# how Scrapy words a download cut at DOWNLOAD_MAXSIZE (before or while the body arrives)
_MAX_SIZE = re.compile(r"larger than (?:the )?download max size \((\d+)\)")


def describe_failure(failure: Any) -> tuple[dict[str, str], str]:
    """A failed request as ({type, message} a person can read, the raw detail for the log)."""
    from scrapy import exceptions as sx
    from scrapy.exceptions import IgnoreRequest
    from scrapy.spidermiddlewares.httperror import HttpError
    from twisted.internet import error as tx
    from twisted.web import _newclient

    request = getattr(failure, "request", None)
    url = redact_url(request.url) if request is not None else "the page"
    raw = f"{failure.type.__name__}: {failure.getErrorMessage()}"[:1000]
    if failure.check(HttpError):
        response = failure.value.response
        return failures.http_problem(response.status, redact_url(response.url)), ""
    if failure.check(tx.DNSLookupError, sx.CannotResolveHostError):
        if request is not None:
            parts = urlsplit(request.url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            reason = blocked_reason(parts.hostname or "", port)
            if reason:
                message = f"blocked target {url}: {reason}"  # the policy names the cause
                return {"type": BLOCKED_TARGET, "message": message}, ""
        return failures.problem("dns_error", url), raw
    if failure.check(tx.ConnectionRefusedError, sx.DownloadConnectionRefusedError):
        return failures.problem("connection_refused", url), raw
    if failure.check(tx.TimeoutError, tx.TCPTimedOutError, sx.DownloadTimeoutError):
        return failures.problem("timeout", url), raw
    lost = (
        tx.ConnectionLost,
        tx.ConnectionDone,
        tx.ConnectionAborted,
        _newclient.ResponseFailed,  # ResponseNeverReceived too
        sx.ResponseDataLossError,
    )
    cause = failure.value.__cause__
    wrapped = failure.check(sx.DownloadFailedError) and (
        isinstance(cause, lost) or "Connection" in str(failure.value)
    )
    too_large = _MAX_SIZE.search(str(failure.value))
    if too_large:  # DOWNLOAD_MAXSIZE cancelled it (declared or streamed size)
        message = failures.sentence("page_too_large", url).replace(
            "MAX_PAGE_BYTES", f"MAX_PAGE_BYTES={too_large.group(1)}"
        )
        return {"type": "page_too_large", "message": message}, raw
    if failure.check(*lost) or wrapped:
        return failures.problem("connection_lost", url), raw
    if failure.check(TargetRefused):  # judged before it went to the proxy
        return dict(failure.value.problem), ""
    if failure.check(IgnoreRequest):
        text = str(failure.value) or "request ignored"
        if "robots" in text.lower():
            return failures.problem("robots_forbidden", url), ""
        return {"type": "ignored", "message": f"{text}: {url}"}, ""
    return failures.problem("fetch_error", url), raw


class State:
    """Counters and decisions of one crawl (the reactor thread only)."""

    def __init__(self, probe: bool) -> None:
        self.pages_ok = 0
        self.pages = 0
        self.items = 0
        self.scheduled = 0
        self.sitemaps = 0
        self.seen = Seen()
        self.errors: list[dict[str, str]] = []
        self.stop_reason: str | None = None
        self.problems = PageProblems()
        self.notes: list[str] = []  # job warnings beyond the pages' own
        # auto: while deciding, only one page is in flight; the rest wait in `held`
        self.deciding = probe
        self.probe_options = True  # browser-only options (scroll, wait_for) ask for a render
        self.probe_sent = False
        self.held: list[Any] = []
        self.needs_javascript = False
        self.reason = ""
        self.first_page: dict[str, Any] | None = None


def spider_class(spec: JobSpec, sink: Sink, state: State, rotation: Rotation) -> type:  # noqa: C901 - one spider, its callbacks read best together
    import scrapy
    from scrapy.exceptions import CloseSpider
    from scrapy.http import TextResponse

    cfg = spec.config
    max_pages = int(cfg["max_pages"])
    max_depth = cfg.get("max_depth")
    link_selector = cfg.get("link_selector")
    follow = bool(cfg.get("follow_links"))
    rules = LinkRules(cfg)

    class JobSpider(scrapy.Spider):
        name = f"job-{spec.job_id}"
        handle_httpstatus_list: list[int] = []
        proxy_rotation = rotation

        def page_request(self, url: str, depth: int) -> Any:
            """A request for `url`, or None (seen, over max_pages, or held while deciding)."""
            if state.scheduled >= max_pages:
                return None
            if not is_web_url(url):
                sink.log("WARNING", skipped(url, "sitemap entry" if depth == 0 else "link"))
                return None
            url = clean_url(url)
            if not state.seen.add(url):
                return None
            state.scheduled += 1
            request = scrapy.Request(
                url,
                callback=self.parse_page,
                errback=self.on_error,
                meta={"job_depth": depth},
                dont_filter=True,
            )
            if state.deciding:
                if state.probe_sent:
                    state.held.append(request)
                    return None
                state.probe_sent = True
            return request

        def sitemap_request(self, url: str) -> Any:
            if not is_web_url(url):
                sink.log("WARNING", skipped(url, "sitemap"))
                return None
            if state.sitemaps >= MAX_SITEMAPS:
                state.notes.append(f"only the first {MAX_SITEMAPS} sitemaps were read")
                return None
            state.sitemaps += 1
            return scrapy.Request(
                clean_url(url),
                callback=self.parse_sitemap,
                errback=self.on_error,
                meta={"sitemap": True},
                dont_filter=True,
            )

        async def start(self):  # type: ignore[override]
            for url in spec.urls:
                if not is_web_url(url):  # the API refuses these; a job stored another way fails
                    problem = {"type": BLOCKED_TARGET, "message": skipped(url, "start URL")}
                    state.errors.append(problem)
                    sink.log("ERROR", problem["message"])
                    continue
                request = self.sitemap_request(url) if cfg.get("sitemap") else None
                if not cfg.get("sitemap"):
                    request = self.page_request(url, 0)
                if request is not None:
                    yield request

        def parse_sitemap(self, response: Any) -> Any:
            url = redact_url(response.url)
            try:
                pages, nested = read_sitemap(response.body, url, spec.max_page_bytes)
            except ValueError as exc:
                problem = {"type": "sitemap_error", "message": f"{exc}."}
                state.errors.append(problem)
                sink.log("ERROR", problem["message"])
                return
            sink.log("INFO", f"sitemap {url}: {len(pages)} pages, {len(nested)} sitemaps")
            for loc in nested:
                request = self.sitemap_request(loc)
                if request is not None:
                    yield request
            for loc in pages:
                if rules.allows(loc):
                    request = self.page_request(loc, 0)
                    if request is not None:
                        yield request

        def parse_page(self, response: Any) -> Any:
            if sink.should_stop or state.stop_reason:
                raise CloseSpider(state.stop_reason or "stopped")
            if state.pages >= max_pages:
                return
            state.pages += 1
            state.pages_ok += 1
            sink.page(response.url, response.status)
            url = redact_url(response.url)
            if not isinstance(response, TextResponse):  # not text: nothing to extract
                sink.log("WARNING", f"skipped non-HTML response {url}")
                yield from self.decided_without(response.url)
                return
            content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
            # not response.text: both engines read a page's bytes by one rule (scrapers/charsets.py)
            text = charsets.page_text(response.body, content_type, response.url)
            outcome = read_page(spec, text, url, content_type)
            if outcome.selector is not None:
                extract.observe(sink, response.url, outcome.selector)
            for note in outcome.notes:
                sink.log("WARNING", note)
            state.problems.add(outcome)
            released: list[Any] = []
            if state.deciding:
                wants = browser_options(cfg) if state.probe_options else []
                render, why = static_verdict(outcome, url, wants)
                state.first_page = figures(outcome, url)
                state.reason = why
                if render:
                    state.needs_javascript = True
                    state.stop_reason = "needs_javascript"
                    raise CloseSpider("needs_javascript")
                sink.log("INFO", f"auto: {why}")
                released = self.release()
            state.items += len(outcome.items)
            sink.items(response.url, outcome.items)
            yield from released
            depth = response.meta.get("job_depth", 0)
            if outcome.selector is None or not follow:
                return
            if max_depth is not None and depth >= max_depth:
                return
            links = extract.extract_links(
                outcome.selector, response.url, link_selector, same_site=not rules.domains
            )
            for link in links:
                if state.scheduled >= max_pages:
                    break
                if rules.allows(link):
                    request = self.page_request(link, depth + 1)
                    if request is not None:
                        yield request

        def release(self) -> list[Any]:
            """Decision made: the pages held back may go."""
            state.deciding = False
            held, state.held = state.held, []
            return held

        def decided_without(self, url: str) -> list[Any]:
            if not state.deciding:
                return []
            state.reason = "static: the first page is not text → scrapy"
            sink.log("INFO", f"auto: {state.reason}")
            return self.release()

        def on_error(self, failure: Any) -> Any:
            problem, raw = describe_failure(failure)
            state.errors.append(problem)
            request = getattr(failure, "request", None)
            sitemap = request is not None and request.meta.get("sitemap")
            response = getattr(failure.value, "response", None)
            if response is not None and state.pages < max_pages and not sitemap:
                state.pages += 1
                sink.page(response.url, response.status)
            sink.log("ERROR", f"{problem['message']} [{raw}]" if raw else problem["message"])
            if state.deciding and not sitemap:
                # the first page failed: the next one decides
                if state.held:
                    yield state.held.pop(0)
                else:
                    state.probe_sent = False

    return JobSpider
