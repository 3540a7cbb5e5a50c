"""The static engine: one Scrapy crawl per job on the process's long-lived reactor."""

from __future__ import annotations

import logging
import re
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import urlsplit

from scrapers import extract
from scrapers.engine import CrawlResult, Sink
from scrapers.proxies import Rotation
from scrapers.reactor import REACTOR_CLASS, run_in_reactor
from scrapers.resolver import blocked_reason
from shared.jobspec import JobSpec
from shared.proxies import NO_PROXIES
from shared.targets import BLOCKED_TARGET, redact_url

logger = logging.getLogger(__name__)
# how Scrapy words a download cut at DOWNLOAD_MAXSIZE (before or while the body arrives)
_MAX_SIZE = re.compile(r"larger than (?:the )?download max size \((\d+)\)")

# Scrapy logs every request at DEBUG and its stats at INFO; the job log gets what matters.
for _name in ("scrapy", "scrapy.core", "scrapy.middleware", "scrapy.extensions", "protego"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def _offline_public_suffixes() -> None:
    """Scrapy's cookie middleware asks tldextract for the public-suffix list, which it
    downloads from the internet on first use. Use the snapshot tldextract ships instead: the
    service makes no outbound request of its own."""
    from scrapy.downloadermiddlewares import cookies
    from tldextract import TLDExtract

    cookies._split_domain = TLDExtract(suffix_list_urls=(), include_psl_private_domains=True)


_offline_public_suffixes()


def crawl_settings(spec: JobSpec) -> dict[str, Any]:
    """Scrapy settings for one job; nothing is shared with the next job's crawler."""
    cfg = spec.config
    middlewares: dict[str, int | None] = {
        "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
        "scrapers.proxies.MetaOnlyProxyMiddleware": 750,
    }
    if (cfg.get("proxy") or "none") != "none":
        # before HttpProxyMiddleware (750), which applies meta["proxy"]
        middlewares["scrapers.proxies.ProxyMiddleware"] = 740
    concurrency = int(cfg["concurrency"])
    timeout = int(cfg["timeout_seconds"])
    headers = {str(k): str(v) for k, v in (cfg.get("headers") or {}).items()}
    user_agent = headers.pop("User-Agent", None) or headers.pop("user-agent", None)
    return {
        "TWISTED_REACTOR": REACTOR_CLASS,
        "ROBOTSTXT_OBEY": bool(cfg["obey_robots"]),
        "USER_AGENT": user_agent or spec.user_agent,
        "DEFAULT_REQUEST_HEADERS": {
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "en",
            **headers,
        },
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "DOWNLOAD_DELAY": float(cfg["download_delay"]),
        "DOWNLOAD_TIMEOUT": max(1, min(timeout, 180)),
        "DOWNLOAD_MAXSIZE": spec.max_page_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "DNS_TIMEOUT": 10,
        "RETRY_TIMES": 1,
        "CLOSESPIDER_TIMEOUT": timeout,
        "TELNETCONSOLE_ENABLED": False,
        "LOGSTATS_INTERVAL": 0,
        "MEMUSAGE_ENABLED": False,
        "HTTPCACHE_ENABLED": False,
        "COOKIES_ENABLED": True,
        "LOG_ENABLED": False,
        "WARN_ON_GENERATOR_RETURN_VALUE": False,  # else inspect.getsource on every response
        "EXTENSIONS": {"scrapy.extensions.logstats.LogStats": None},
        "SPIDER_MIDDLEWARES": {"scrapy.spidermiddlewares.depth.DepthMiddleware": None},
        "DOWNLOADER_MIDDLEWARES": middlewares,
        # http(s) only: a link or redirect to file://, ftp://, s3:// or data: goes nowhere
        "DOWNLOAD_HANDLERS": {"file": None, "ftp": None, "s3": None, "data": None},
    }


def describe_failure(failure: Any) -> dict[str, str]:
    """A failed request as {type, message} a user can read."""
    from scrapy import exceptions as sx
    from scrapy.exceptions import IgnoreRequest
    from scrapy.spidermiddlewares.httperror import HttpError
    from twisted.internet import error as tx

    request = getattr(failure, "request", None)
    url = redact_url(request.url) if request is not None else "?"
    if failure.check(HttpError):
        response = failure.value.response
        where = redact_url(response.url)
        return {"type": "http_error", "message": f"HTTP {response.status} from {where}"}
    if failure.check(tx.DNSLookupError, sx.CannotResolveHostError):
        if request is not None:
            parts = urlsplit(request.url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            reason = blocked_reason(parts.hostname or "", port)
            if reason:
                return {
                    "type": BLOCKED_TARGET,
                    "message": f"blocked target {url}: {reason}; private and internal "
                    "addresses are not crawled (PRIVATE_TARGETS, TARGET_ALLOWLIST)",
                }
        return {"type": "dns_error", "message": f"DNS lookup failed for {url}"}
    if failure.check(tx.ConnectionRefusedError, sx.DownloadConnectionRefusedError):
        return {"type": "connection_refused", "message": f"connection refused by {url}"}
    if failure.check(tx.TimeoutError, tx.TCPTimedOutError, sx.DownloadTimeoutError):
        return {"type": "timeout", "message": f"request timed out: {url}"}
    if failure.check(IgnoreRequest):
        text = str(failure.value) or "request ignored"
        if "robots" in text.lower():
            return {"type": "robots_forbidden", "message": f"forbidden by robots.txt: {url}"}
        return {"type": "ignored", "message": f"{text}: {url}"}
    text = failure.getErrorMessage()
    too_large = _MAX_SIZE.search(text)
    if too_large:  # DOWNLOAD_MAXSIZE cancelled it (declared or streamed size)
        return {
            "type": "page_too_large",
            "message": f"page larger than MAX_PAGE_BYTES={too_large.group(1)}, skipped: {url}",
        }
    return {"type": "fetch_error", "message": f"{text} ({url})"}


class _State:
    def __init__(self) -> None:
        self.pages_ok = 0
        self.pages = 0
        self.scheduled = 0
        self.seen: set[str] = set()
        self.errors: list[dict[str, str]] = []
        self.stop_reason: str | None = None
        self.needs_javascript = False
        self.reason = ""


def _spider_class(
    spec: JobSpec, sink: Sink, state: _State, detect_js: bool, rotation: Rotation
) -> type:
    import scrapy
    from scrapy.exceptions import CloseSpider

    cfg = spec.config
    max_pages = int(cfg["max_pages"])
    max_depth = cfg.get("max_depth")
    item_selector = cfg.get("item_selector")
    link_selector = cfg.get("link_selector")
    follow = bool(cfg.get("follow_links"))

    class JobSpider(scrapy.Spider):
        name = f"job-{spec.job_id}"
        handle_httpstatus_list: list[int] = []
        proxy_rotation = rotation

        def request(self, url: str, depth: int) -> Any:
            state.seen.add(url)
            state.scheduled += 1
            return scrapy.Request(
                url,
                callback=self.parse_page,
                errback=self.on_error,
                meta={"job_depth": depth},
                dont_filter=True,
            )

        async def start(self):  # type: ignore[override]
            for url in spec.urls[:max_pages]:
                if url not in state.seen:
                    yield self.request(url, 0)

        def parse_page(self, response: Any) -> Any:
            if sink.should_stop or state.stop_reason:
                raise CloseSpider(state.stop_reason or "stopped")
            if state.pages >= max_pages:
                return
            state.pages += 1
            state.pages_ok += 1
            sink.page(response.url, response.status)
            if not hasattr(response, "selector"):  # not text: nothing to extract
                sink.log("WARNING", f"skipped non-HTML response {response.url}")
                return
            extract.observe(sink, response.url, response.selector)
            budget = extract.page_budget(spec)
            items = extract.extract_items(response.selector, spec.selectors, item_selector, budget)
            for note in sorted(budget.notes):
                sink.log("WARNING", f"{redact_url(response.url)}: {note}")
            if detect_js and not items:
                from scrapers.auto import needs_javascript

                verdict, why = needs_javascript(response.text, bool(spec.selectors))
                if verdict:
                    state.needs_javascript, state.reason = True, why
                    state.stop_reason = "needs_javascript"
                    raise CloseSpider("needs_javascript")
            sink.items(response.url, items)
            depth = response.meta.get("job_depth", 0)
            if not follow or (max_depth is not None and depth >= max_depth):
                return
            for link in extract.extract_links(response.selector, response.url, link_selector):
                if state.scheduled >= max_pages:
                    break
                if link not in state.seen:
                    yield self.request(link, depth + 1)

        def on_error(self, failure: Any) -> None:
            problem = describe_failure(failure)
            state.errors.append(problem)
            response = getattr(failure.value, "response", None)
            if response is not None and state.pages < max_pages:
                state.pages += 1
                sink.page(response.url, response.status)
            sink.log("ERROR", problem["message"])

    return JobSpider


class ScrapyEngine:
    """Runs a job as a Scrapy crawl on the reactor thread and waits for it."""

    name = "scrapy"

    def __init__(self, stuck_grace_seconds: float = 60.0) -> None:
        self.stuck_grace_seconds = stuck_grace_seconds
        self.stuck: str | None = None  # set when the reactor thread stopped answering

    def run(
        self,
        spec: JobSpec,
        sink: Sink,
        detect_js: bool = False,
        rotation: Rotation | None = None,
    ) -> CrawlResult:
        """Crawl `spec`; `rotation` routes requests through proxies (config.proxy)."""
        from scrapy.crawler import CrawlerRunner
        from scrapy.utils.defer import deferred_from_coro
        from twisted.internet import task

        state = _State()
        holder: dict[str, Any] = {}
        rotation = rotation or Rotation(str(spec.config.get("proxy") or "none"))

        def start() -> Any:
            runner = CrawlerRunner(crawl_settings(spec))
            crawler = runner.create_crawler(_spider_class(spec, sink, state, detect_js, rotation))
            holder["crawler"] = crawler

            def watch() -> None:
                # Cancellation and the item cap arrive from other threads: stop between pages.
                if sink.should_stop and not state.stop_reason and crawler.engine.running:
                    state.stop_reason = "cancelled" if not _full(sink) else "item_limit"
                    deferred_from_coro(crawler.engine.close_spider_async(reason=state.stop_reason))

            loop = task.LoopingCall(watch)
            d = runner.crawl(crawler)
            loop.start(0.25, now=False)

            def done(result: Any) -> Any:
                if loop.running:
                    loop.stop()
                return result

            return d.addBoth(done)

        timeout = int(spec.config["timeout_seconds"]) + self.stuck_grace_seconds
        future = run_in_reactor(start)
        try:
            future.result(timeout=timeout)
        except FutureTimeout:
            stuck = holder.get("crawler")
            if stuck is not None:
                run_in_reactor(lambda: deferred_from_coro(stuck.stop_async()))
            if not _reactor_answers():
                # a callback (a selector, a parse) holds the reactor thread: no later job of
                # this process could run, so the worker replaces the process
                self.stuck = "the crawl's thread is stuck (a selector or page that never ends)"
                sink.log("ERROR", f"{self.stuck}; the worker process is replaced")
            return CrawlResult(
                pages=state.pages,
                error={
                    "type": "timeout",
                    "message": f"job exceeded timeout_seconds={spec.config['timeout_seconds']} "
                    "and did not stop; items so far are kept",
                },
            )
        crawler = holder["crawler"]
        reason = crawler.stats.get_value("finish_reason") or "finished"
        result = self._result(spec, state, reason)
        if rotation.exhausted:
            result.error = dict(NO_PROXIES)
            result.finish_reason = NO_PROXIES["type"]
            sink.log("ERROR", NO_PROXIES["message"])
        return result

    @staticmethod
    def _result(spec: JobSpec, state: _State, reason: str) -> CrawlResult:
        result = CrawlResult(
            pages=state.pages,
            finish_reason=state.stop_reason or reason,
            needs_javascript=state.needs_javascript,
            reason=state.reason,
            errors=[e["message"] for e in state.errors],
        )
        if reason == "closespider_timeout":
            timeout = spec.config["timeout_seconds"]
            result.error = {
                "type": "timeout",
                "message": f"job exceeded timeout_seconds={timeout}; items so far are kept",
            }
        elif state.pages_ok == 0 and state.errors and not state.stop_reason:
            result.error = state.errors[0]
        return result


def _reactor_answers(within: float = 5.0) -> bool:
    """Does the reactor thread still run callbacks?"""
    try:
        run_in_reactor(lambda: None).result(timeout=within)
    except FutureTimeout:
        return False
    return True


def _full(sink: Sink) -> bool:
    full = getattr(sink, "full", None)
    return bool(full is not None and full.is_set())
