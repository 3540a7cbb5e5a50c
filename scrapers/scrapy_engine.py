"""The static engine: one Scrapy crawl per job on the process's long-lived reactor."""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from scrapers import failures
from scrapers.auto import static_decision
from scrapers.engine import CrawlResult, RunContext, Sink
from scrapers.proxies import Rotation
from scrapers.reactor import REACTOR_CLASS, run_in_reactor
from scrapers.scrapy_spider import State, describe_failure, spider_class
from shared.jobspec import JobSpec
from shared.proxies import NO_PROXIES

POLITE_HANDLER = "scrapers.scrapy_politeness.PoliteDownloadHandler"
SESSION_COOKIES = "SCRAPEMASTER_SESSION_COOKIES"  # scrapers/scrapy_session.py reads it

__all__ = ["ScrapyEngine", "crawl_settings", "describe_failure"]

logger = logging.getLogger(__name__)

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


def crawl_settings(spec: JobSpec, cookies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Scrapy settings for one job; nothing is shared with the next job's crawler. `cookies`:
    the session's (scrapers/scrapy_session.py)."""
    cfg = spec.config
    middlewares: dict[str, int | None] = {
        "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
        "scrapers.scrapy_session.SessionCookiesMiddleware": 700,
        # robots.txt kept across this process's jobs (ROBOTS_CACHE_SECONDS), same rules
        "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
        "scrapers.scrapy_robots.CachedRobotsTxtMiddleware": 100,
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
        "DOWNLOAD_HANDLERS": {
            "file": None,
            "ftp": None,
            "s3": None,
            "data": None,
            # every request takes the site's fleet-wide slot first (DOMAIN_CONCURRENCY)
            "http": POLITE_HANDLER,
            "https": POLITE_HANDLER,
        },
        "SCRAPEMASTER_JOB_ID": str(spec.job_id),
        SESSION_COOKIES: list(cookies or []),
    }


class ScrapyEngine:
    """Runs a job as a Scrapy crawl on the reactor thread and waits for it."""

    name = "scrapy"

    def __init__(self, stuck_grace_seconds: float = 60.0) -> None:
        self.stuck_grace_seconds = stuck_grace_seconds
        self.stuck: str | None = None  # set when the reactor thread stopped answering

    def close(self) -> None:
        """Nothing to release: the reactor thread ends with the process."""

    def run(
        self,
        spec: JobSpec,
        sink: Sink,
        ctx: RunContext | None = None,
    ) -> CrawlResult:
        """Crawl `spec`; `ctx.rotation` routes requests through proxies (config.proxy).
        `ctx.auto.probe`: decide on the first page; when it needs rendering, stop there
        (`needs_javascript`, with the page's figures in `first_page`)."""
        from scrapy.crawler import CrawlerRunner
        from scrapy.utils.defer import deferred_from_coro
        from twisted.internet import task

        ctx = ctx or RunContext()
        state = State(ctx.auto)
        holder: dict[str, Any] = {}
        rotation = ctx.rotation or Rotation(spec.config.get("proxy") or "none")

        def start() -> Any:
            cookies = (ctx.session or {}).get("cookies")
            runner = CrawlerRunner(crawl_settings(spec, cookies))
            crawler = runner.create_crawler(spider_class(spec, sink, state, rotation))
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
                if not rotation.pending:
                    return result
                # proxy outcomes still being written: the job ends after them
                from twisted.internet.defer import DeferredList

                return DeferredList(list(rotation.pending)).addBoth(lambda _: result)

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
                error=failures.job_timeout(spec.config["timeout_seconds"], stopped=False),
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
    def _result(spec: JobSpec, state: State, reason: str) -> CrawlResult:
        result = CrawlResult(
            pages=state.pages,
            items=state.items,
            finish_reason=state.stop_reason or reason,
            needs_javascript=state.needs_javascript,
            reason=state.reason,
            errors=[e["message"] for e in state.errors],
            first_page=state.first_page,
        )
        if reason == "closespider_timeout":
            result.error = failures.job_timeout(spec.config["timeout_seconds"])
        elif state.pages_ok == 0 and state.errors and not state.stop_reason:
            result.error = state.errors[0]
        if not state.needs_javascript:
            result.decision = static_decision(state.first_page, state.reason)
        if not state.needs_javascript:
            result.warnings = state.problems.warnings(spec, state.pages_ok)
            result.warnings += list(dict.fromkeys(state.notes))
            if spec.config.get("sitemap") and state.scheduled == 0 and not result.error:
                result.warnings.append("the sitemaps listed no page that the job's rules allow")
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
