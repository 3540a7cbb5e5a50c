"""The JavaScript engine: renders a job's pages in a fresh context of the warm Chromium.

Chromium sets proxies per context, so a job through the pool renders in one context per pool
proxy: when its proxy is banned, the context is closed and the remaining pages go on in a new
context through another proxy (the banned page is tried again there).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from scrapers import failures
from scrapers.browser_pool import BrowserCrashed, Lease, get_pool
from scrapers.crawl_rules import MAX_SITEMAPS, read_sitemap
from scrapers.engine import CrawlResult, RunContext, Sink
from scrapers.playwright_visit import PageVisits, State
from scrapers.proxies import Rotation
from scrapers.rendering import (  # noqa: F401  (re-exported for bench/)
    NAV_TIMEOUT_CAP,
    POLL,
    WAIT_FOR_CAP,
    _block_heavy,
    _Network,
    _Robots,
    _scroll,
    describe_error,
    wait_selector,
)
from shared.jobspec import JobSpec, file_outputs
from shared.proxies import NO_PROXIES
from shared.schemes import is_web_url, scheme_of, skipped
from shared.settings import Settings
from shared.targets import BLOCKED_TARGET

CLOSE_WAIT = 10.0  # seconds a tab or the job's tabs get to close after a stop

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from playwright.async_api import BrowserContext, Route


def _web_only(sink: Sink, images: bool = False) -> Callable[[Route], Awaitable[None]]:
    """The context's route handler: whatever Chromium is about to load that is not http(s) is
    aborted (a page's own navigation, frame, redirect or form to `file:`, a `goto` of one),
    then heavy resources as before. Chromium already keeps web pages from opening `file:`;
    this also covers navigations we start and the schemes it would allow (`data:`, `blob:`,
    `filesystem:` documents). `data:` and `blob:` sub-resources stay: they are the page's own
    bytes, nothing leaves the worker for them. `images`: the job keeps screenshots or PDFs,
    so images and fonts load (media stays blocked)."""

    async def route(route: Route) -> None:
        request = route.request
        url = request.url
        if not is_web_url(url) and (
            request.is_navigation_request() or scheme_of(url) not in ("data", "blob")
        ):
            where = "navigation to" if request.is_navigation_request() else "request for"
            sink.log("WARNING", skipped(url, where))
            await route.abort("blockedbyclient")
            return
        if images and request.resource_type in ("image", "font"):
            await route.continue_()
            return
        await _block_heavy(route)

    return route


def _full(sink: Sink) -> bool:
    full = getattr(sink, "full", None)
    return bool(full is not None and full.is_set())


class PlaywrightEngine(PageVisits):
    """Runs a job in Chromium on the browser pool's loop and waits for it."""

    name = "playwright"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stuck: str | None = None  # set when the browser's loop stopped answering

    def run(
        self,
        spec: JobSpec,
        sink: Sink,
        ctx: RunContext | None = None,
    ) -> CrawlResult:
        """Crawl `spec`, reporting to `sink`; blocks the calling thread until the job ends.

        auto: `ctx.auto.compare_with` (the static engine's first-page figures) renders the
        first page and decides (`CrawlResult.decision`); when the render finds no more, the
        crawl stops there for the static engine to do. `ctx.auto.check_first`: a remembered
        decision; the result warns when the first page gives nothing.
        """
        ctx = ctx or RunContext()
        state = State(spec, ctx.auto)
        state.session = ctx.session
        state.rotation = ctx.rotation or Rotation(spec.config.get("proxy") or "none")
        timeout = int(spec.config["timeout_seconds"])
        pool = get_pool(self.settings)
        future = pool.submit(self._job(spec, sink, state))
        try:
            return future.result(timeout=timeout + self.settings.engine_stuck_grace_seconds)
        except FutureTimeout:
            future.cancel()  # cancels the task on the loop; its finally closes the context
            state.fatal = failures.job_timeout(timeout, stopped=False)
            try:
                pool.submit(asyncio.sleep(0)).result(timeout=5)
            except FutureTimeout:
                self.stuck = "the browser's event loop is stuck"
                sink.log("ERROR", f"{self.stuck}; the worker process is replaced")
            return self._result(spec, state)

    def close(self) -> None:
        """Close this process's browser pool (worker shutdown)."""
        from scrapers.browser_pool import close_pool

        close_pool()

    # ------------------------------------------------------------------ on the pool's loop

    async def _proxy(self, state: State, sink: Sink) -> str | None | bool:
        """The job's proxy URL: None for none, False when the pool has none left."""
        if not state.rotation.enabled:
            return None
        # the pool lives in MongoDB: keep the blocking call off the browser's loop
        state.proxy_id, url = await asyncio.to_thread(state.rotation.choose, state.banned_proxies)
        if url is None:
            state.fatal = dict(NO_PROXIES)
            return False
        return url

    async def _job(self, spec: JobSpec, sink: Sink, state: State) -> CrawlResult:
        from playwright.async_api import Error as PlaywrightError

        pool = get_pool(self.settings)
        loop = asyncio.get_running_loop()
        timeout = int(spec.config["timeout_seconds"])
        leased = False
        proxy = await self._proxy(state, sink)
        try:
            if proxy is False:
                return self._result(spec, state)
            async with pool.lease() as lease:
                leased = True
                deadline = loop.time() + timeout  # from the browser on: a launch is not the job's
                state.deadline = deadline
                while True:
                    await self._in_context(lease, proxy, deadline, spec, sink, state)
                    if not state.repick or state.fatal or state.stop_reason:
                        break
                    if not state.frontier:
                        break
                    proxy = await self._proxy(state, sink)
                    if proxy is False:
                        break
                    sink.log(
                        "WARNING",
                        f"pool proxy banned: the remaining {len(state.frontier)} page(s) go "
                        "through another proxy",
                    )
        except BrowserCrashed as exc:
            state.fatal = {"type": "browser_crashed", "message": str(exc)}
        except PlaywrightError as exc:
            first = str(exc).strip().splitlines()[0]
            if not leased:
                state.fatal = {
                    "type": "browser_error",
                    "message": f"Chromium did not start: {first}",
                }
            else:
                kind = "browser_error" if pool.connected else "browser_crashed"
                state.fatal = {"type": kind, "message": f"The browser failed: {first}"}
        if state.fatal:
            sink.log("ERROR", state.fatal["message"])
        return self._result(spec, state)

    async def _in_context(
        self,
        lease: Lease,
        proxy: str | None | bool,
        deadline: float,
        spec: JobSpec,
        sink: Sink,
        state: State,
    ) -> None:
        """Crawl in one new context through `proxy` until done, the deadline or a ban."""
        pool = get_pool(self.settings)
        options = self._context_options(spec)
        if state.session:
            options["storage_state"] = state.session  # a login's session, config.cookies
        # all of the context's traffic (robots.txt and sitemaps via context.request included)
        # goes through the policy proxy; a job's pool proxy sits behind it, so the targets are
        # judged all the same
        egress = pool.egress
        assert egress is not None  # started with the browser
        server = egress.url
        if isinstance(proxy, str) and proxy:
            server = await egress.via(proxy, judged=not state.rotation.uses_pool)
        options["proxy"] = {"server": server, "bypass": "<-loopback>"}
        context = await lease.browser.new_context(**options)
        state.repick = False
        loop = asyncio.get_running_loop()
        try:
            left = max(0.001, deadline - loop.time())
            await asyncio.wait_for(self._crawl(context, spec, sink, state), left)
        except TimeoutError:
            state.fatal = failures.job_timeout(int(spec.config["timeout_seconds"]))
        finally:
            lease.pages = state.pages
            with contextlib.suppress(Exception):
                await asyncio.wait_for(context.close(), 10)

    def _context_options(self, spec: JobSpec) -> dict[str, Any]:
        headers = {str(k): str(v) for k, v in (spec.config.get("headers") or {}).items()}
        agents = [k for k in headers if k.lower() == "user-agent"]
        user_agent = headers.pop(agents[0]) if agents else spec.user_agent
        for key in agents[1:]:
            headers.pop(key)
        # service workers would serve later pages from their own cache, outside our routing
        return {"user_agent": user_agent, "extra_http_headers": headers, "service_workers": "block"}

    async def _start(
        self, context: BrowserContext, spec: JobSpec, sink: Sink, state: State
    ) -> None:
        """Queue the start pages once: the start URLs, or what their sitemaps list."""
        state.started = True
        max_pages = int(spec.config["max_pages"])
        if spec.config.get("sitemap"):
            await self._read_sitemaps(context, spec, sink, state)
            return
        for url in spec.urls:
            if is_web_url(url):
                state.enqueue(url, 0, max_pages)
            else:  # the API refuses these; a job stored another way fails the same
                self._fail(sink, state, BLOCKED_TARGET, skipped(url, "start URL"))

    async def _read_sitemaps(
        self, context: BrowserContext, spec: JobSpec, sink: Sink, state: State
    ) -> None:
        """Queue the pages the start sitemaps (and the sitemaps they name) list."""
        max_pages = int(spec.config["max_pages"])
        sitemaps, read = list(spec.urls), 0
        while sitemaps and len(state.seen) < max_pages:
            if read >= MAX_SITEMAPS:
                state.notes.append(f"only the first {MAX_SITEMAPS} sitemaps were read")
                break
            url, read = sitemaps.pop(0), read + 1
            listed = await self._sitemap(context, url, spec, sink, state)
            if listed is None:
                continue
            pages, nested = listed
            sink.log("INFO", f"sitemap {url}: {len(pages)} pages, {len(nested)} sitemaps")
            for loc in [*nested, *pages]:
                if not is_web_url(loc):
                    sink.log("WARNING", skipped(loc, "sitemap entry"))
            sitemaps.extend(loc for loc in nested if is_web_url(loc))
            for loc in pages:
                if is_web_url(loc) and state.rules.allows(loc):
                    state.enqueue(loc, 0, max_pages)
        if not state.frontier and not state.errors:
            state.notes.append("the sitemaps listed no page that the job's rules allow")

    async def _sitemap(
        self, context: BrowserContext, url: str, spec: JobSpec, sink: Sink, state: State
    ) -> tuple[list[str], list[str]] | None:
        """(pages, sitemaps) the sitemap at `url` lists; None when it failed (reported)."""
        if not is_web_url(url):
            self._fail(sink, state, BLOCKED_TARGET, skipped(url, "sitemap"))
            return None
        try:
            response = await context.request.get(url, timeout=30_000)
            body = await response.body()
            if not response.ok:
                problem = failures.http_problem(response.status, url)
                self._fail(sink, state, problem["type"], problem["message"])
                return None
            if len(body) > spec.max_page_bytes:
                self._fail(sink, state, "page_too_large", f"sitemap over MAX_PAGE_BYTES: {url}")
                return None
            return read_sitemap(body, url, spec.max_page_bytes)
        except ValueError as exc:
            self._fail(sink, state, "sitemap_error", f"{exc}.")
        except Exception as exc:  # Playwright's APIRequest errors: the sitemap is unreachable
            problem, raw = describe_error(exc, url)
            self._fail(sink, state, problem["type"], problem["message"], raw)
        return None

    async def _crawl(
        self, context: BrowserContext, spec: JobSpec, sink: Sink, state: State
    ) -> None:
        cfg = spec.config
        concurrency = max(1, min(int(cfg["concurrency"]), self.settings.playwright_pages_per_job))
        await context.route("**/*", _web_only(sink, images=bool(file_outputs(cfg))))
        robots = _Robots(context.request, spec.user_agent) if cfg.get("obey_robots") else None
        if not state.started:
            await self._start(context, spec, sink, state)
        workers = [
            asyncio.ensure_future(self._worker(context, robots, spec, sink, state))
            for _ in range(concurrency)
        ]
        try:
            while not all(w.done() for w in workers):
                if sink.should_stop:
                    state.stop_reason = "item_limit" if _full(sink) else "cancelled"
                    return
                done, _ = await asyncio.wait(workers, timeout=POLL, return_when="FIRST_EXCEPTION")
                for worker in done:
                    worker.result()  # BrowserCrashed ends the job here
        finally:
            # Cancel, timeout or crash: abandon pages in flight; closing the context ends them.
            for worker in workers:
                worker.cancel()
            # bounded: a tab that will not close must not hold the job (the context is closed
            # next, which ends whatever is left)
            await asyncio.wait(workers, timeout=CLOSE_WAIT)

    async def _worker(
        self,
        context: BrowserContext,
        robots: _Robots | None,
        spec: JobSpec,
        sink: Sink,
        state: State,
    ) -> None:
        """Visit frontier URLs in one tab until the frontier is empty and no page is in flight.

        The tab is reused from page to page: a new one costs a renderer start (~200 ms). While
        `auto` decides on the first page, only that page is in flight.
        """
        cfg = spec.config
        page, network = None, None
        opened = 0.0  # when the tab was opened, or last metered (issue 25: browser-seconds)
        try:
            while not state.repick and not state.stop_reason:
                if not state.frontier or (state.deciding and state.busy):
                    if state.busy == 0:
                        state.wake.set()
                        return
                    state.wake.clear()
                    await state.wake.wait()
                    continue
                url, depth = state.frontier.popleft()
                state.busy += 1
                try:
                    if robots is not None and not await robots.allowed(url):
                        problem = failures.problem("robots_forbidden", url)
                        self._fail(sink, state, problem["type"], problem["message"])
                        continue
                    if page is None or page.is_closed():
                        page = await context.new_page()
                        network = _Network(page)
                        opened = time.monotonic()
                    assert network is not None  # made with its page
                    try:
                        links = await self._visit(
                            page,
                            network,
                            url,
                            spec,
                            sink,
                            state,
                            start=depth == 0,
                            crawl_delay=robots.crawl_delay(url) if robots is not None else None,
                        )
                    finally:
                        opened = _meter_browser(sink, opened)
                    max_depth = cfg.get("max_depth")
                    if max_depth is None or depth < max_depth:
                        for link in links:
                            state.enqueue(link, depth + 1, int(cfg["max_pages"]))
                finally:
                    state.busy -= 1
                    state.wake.set()
        finally:
            state.wake.set()
            if page is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(page.close(), CLOSE_WAIT)
                _meter_browser(sink, opened)

    @staticmethod
    def _result(spec: JobSpec, state: State) -> CrawlResult:
        result = CrawlResult(
            pages=state.pages,
            items=state.items,
            finish_reason=state.stop_reason or "finished",
            errors=[e["message"] for e in state.errors],
            first_page=state.first_page,
            decision=state.decision,
        )
        if state.fatal is not None:
            result.error = state.fatal
            result.finish_reason = state.fatal["type"]
        elif state.pages_ok == 0 and state.errors and not state.stop_reason:
            result.error = state.errors[0]
        if state.stop_reason != "auto_static":
            result.warnings = state.problems.warnings(spec, state.pages_ok)
            result.warnings += list(dict.fromkeys(state.notes))
        return result


def _meter_browser(sink: Sink, since: float) -> float:
    """Tell the sink how long the tab has been open since `since` (a sink without a meter,
    e.g. a preview's, is told nothing); the new mark."""
    moment = time.monotonic()
    meter = getattr(sink, "browser_time", None)
    if since and meter is not None:
        meter(moment - since)
    return moment
