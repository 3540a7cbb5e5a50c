"""The JavaScript engine: renders a job's pages in a fresh context of the warm Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import urlsplit

from scrapers import extract
from scrapers.browser_pool import BrowserCrashed, get_pool
from scrapers.egress import BLOCKED_HEADER, ERROR_HEADER
from scrapers.engine import CrawlResult, Sink
from scrapers.proxies import CONNECTION_BAN, Rotation, browser_proxy
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
from shared.jobspec import JobSpec
from shared.proxies import NO_PROXIES, is_ban
from shared.targets import BLOCKED_TARGET


class _State:
    def __init__(self) -> None:
        self.pages = 0
        self.pages_ok = 0
        self.items = 0
        self.seen: set[str] = set()
        self.errors: list[dict[str, str]] = []
        self.stop_reason: str | None = None
        self.fatal: dict[str, str] | None = None
        self.frontier: deque[tuple[str, int]] = deque()
        self.busy = 0  # pages in flight: an empty frontier means "done" only when none are
        self.wake = asyncio.Event()
        self.rotation = Rotation("none")
        self.proxy_id: str | None = None  # the pool proxy of this job's context

    def enqueue(self, url: str, depth: int, max_pages: int) -> None:
        """Queue `url` unless seen; max_pages caps every page ever queued, errors included."""
        if len(self.seen) < max_pages and url not in self.seen:
            self.seen.add(url)
            self.frontier.append((url, depth))


CLOSE_WAIT = 10.0  # seconds a tab or the job's tabs get to close after a stop
_DOM_SIZE = "() => document.documentElement ? document.documentElement.outerHTML.length : 0"


def _too_large(url: str, spec: JobSpec) -> str:
    return f"page larger than MAX_PAGE_BYTES={spec.max_page_bytes}, skipped: {url}"


def _full(sink: Sink) -> bool:
    full = getattr(sink, "full", None)
    return bool(full is not None and full.is_set())


class PlaywrightEngine:
    """Runs a job in Chromium on the browser pool's loop and waits for it."""

    name = "playwright"

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.stuck: str | None = None  # set when the browser's loop stopped answering

    def run(self, spec: JobSpec, sink: Sink, rotation: Rotation | None = None) -> CrawlResult:
        """Crawl `spec`, reporting to `sink`; blocks the calling thread until the job ends.

        Chromium sets proxies per context, so a job uses one proxy of the pool for all its
        pages (the next job picks again); each page's outcome is recorded on that proxy.
        """
        state = _State()
        state.rotation = rotation or Rotation(str(spec.config.get("proxy") or "none"))
        timeout = int(spec.config["timeout_seconds"])
        pool = get_pool(self.settings)
        future = pool.submit(self._job(spec, sink, state))
        try:
            return future.result(timeout=timeout + self.settings.engine_stuck_grace_seconds)
        except FutureTimeout:
            future.cancel()  # cancels the task on the loop; its finally closes the context
            state.fatal = {
                "type": "timeout",
                "message": f"job exceeded timeout_seconds={timeout} and did not stop",
            }
            try:
                pool.submit(asyncio.sleep(0)).result(timeout=5)
            except FutureTimeout:
                self.stuck = "the browser's event loop is stuck"
                sink.log("ERROR", f"{self.stuck}; the worker process is replaced")
            return self._result(state)

    def close(self) -> None:
        """Close this process's browser pool (worker shutdown)."""
        from scrapers.browser_pool import close_pool

        close_pool()

    # ------------------------------------------------------------------ on the pool's loop

    async def _job(self, spec: JobSpec, sink: Sink, state: _State) -> CrawlResult:
        from playwright.async_api import Error as PlaywrightError

        pool = get_pool(self.settings)
        timeout = int(spec.config["timeout_seconds"])
        leased = False
        options = self._context_options(spec)
        if state.rotation.enabled:
            # the pool lives in MongoDB: keep the blocking call off the browser's loop
            state.proxy_id, proxy_url = await asyncio.to_thread(state.rotation.choose)
            if proxy_url is None:
                state.fatal = dict(NO_PROXIES)
                sink.log("ERROR", NO_PROXIES["message"])
                return self._result(state)
            options["proxy"] = browser_proxy(proxy_url)
        try:
            async with pool.lease() as lease:
                leased = True
                if "proxy" not in options and pool.egress is not None:
                    # the context's own traffic (robots.txt via context.request included) goes
                    # through the policy proxy too; admin pool proxies are exempt (API.md)
                    options["proxy"] = {"server": pool.egress.url, "bypass": "<-loopback>"}
                context = await lease.browser.new_context(**options)
                try:
                    await asyncio.wait_for(self._crawl(context, spec, sink, state), timeout)
                except TimeoutError:
                    state.fatal = {
                        "type": "timeout",
                        "message": f"job exceeded timeout_seconds={timeout}; items so far are kept",
                    }
                finally:
                    lease.pages = state.pages
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(context.close(), 10)
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
                state.fatal = {"type": kind, "message": first}
        if state.fatal:
            sink.log("ERROR", state.fatal["message"])
        return self._result(state)

    def _context_options(self, spec: JobSpec) -> dict[str, Any]:
        headers = {str(k): str(v) for k, v in (spec.config.get("headers") or {}).items()}
        agents = [k for k in headers if k.lower() == "user-agent"]
        user_agent = headers.pop(agents[0]) if agents else spec.user_agent
        for key in agents[1:]:
            headers.pop(key)
        # service workers would serve later pages from their own cache, outside our routing
        return {"user_agent": user_agent, "extra_http_headers": headers, "service_workers": "block"}

    async def _crawl(self, context: Any, spec: JobSpec, sink: Sink, state: _State) -> None:
        cfg = spec.config
        concurrency = max(1, min(int(cfg["concurrency"]), self.settings.playwright_pages_per_job))
        await context.route("**/*", _block_heavy)
        robots = _Robots(context.request, spec.user_agent) if cfg.get("obey_robots") else None
        for url in spec.urls:
            state.enqueue(url, 0, int(cfg["max_pages"]))
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
        self, context: Any, robots: _Robots | None, spec: JobSpec, sink: Sink, state: _State
    ) -> None:
        """Visit frontier URLs in one tab until the frontier is empty and no page is in flight.

        The tab is reused from page to page: a new one costs a renderer start (~200 ms).
        """
        cfg = spec.config
        page, network = None, None
        try:
            while True:
                if not state.frontier:
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
                        self._fail(
                            sink, state, "robots_forbidden", f"forbidden by robots.txt: {url}"
                        )
                        continue
                    if page is None or page.is_closed():
                        page = await context.new_page()
                        network = _Network(page)
                    links = await self._visit(page, network, url, spec, sink, state)
                    if cfg.get("max_depth") is None or depth < cfg["max_depth"]:
                        for link in links:
                            state.enqueue(link, depth + 1, int(cfg["max_pages"]))
                finally:
                    state.busy -= 1
                    state.wake.set()
        finally:
            if page is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(page.close(), CLOSE_WAIT)

    async def _visit(
        self, page: Any, network: Any, url: str, spec: JobSpec, sink: Sink, state: _State
    ) -> list[str]:
        """Render one page, report it and its items; returns the links to follow."""
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        cfg = spec.config
        timeout_ms = max(1, min(int(cfg["timeout_seconds"]), NAV_TIMEOUT_CAP)) * 1000
        started = asyncio.get_running_loop().time()
        try:
            response = await page.goto(url, wait_until=cfg["wait_until"], timeout=timeout_ms)
        except PlaywrightError as exc:
            self._check_browser(page, exc)
            refused = self._blocked(sink, url)
            if refused:
                return self._fail(sink, state, BLOCKED_TARGET, refused)
            problem = self._proxy_failure(url) or describe_error(exc, url)
            if problem["type"] in ("timeout", "connection_refused") or "PROXY" in str(exc):
                await self._proxy_outcome(state, f"{CONNECTION_BAN}: {problem['type']}")
            if problem["type"] == "fetch_error":  # e.g. the tab crashed: the worker opens another
                with contextlib.suppress(Exception):
                    await page.close()
            return self._fail(sink, state, problem["type"], problem["message"])
        final = page.url
        state.seen.add(final)
        refused = self._blocked(sink, url)
        if response is not None and response.headers.get(BLOCKED_HEADER.lower()):
            return self._fail(sink, state, BLOCKED_TARGET, refused or f"blocked target {url}")
        if response is not None and response.headers.get(ERROR_HEADER.lower()):
            # the egress proxy could not reach it: report it as a direct fetch would
            failure = self._proxy_failure(url, response.headers[ERROR_HEADER.lower()])
            if failure is not None:
                if failure["type"] in ("timeout", "connection_refused"):
                    await self._proxy_outcome(state, f"{CONNECTION_BAN}: {failure['type']}")
                return self._fail(sink, state, failure["type"], failure["message"])
        status = response.status if response is not None else 200
        declared = response.headers.get("content-length") if response is not None else None
        if declared and declared.isdigit() and int(declared) > spec.max_page_bytes:
            state.pages += 1
            sink.page(final, status)
            return self._fail(sink, state, "page_too_large", _too_large(final, spec))
        if not 200 <= status < 300:
            if is_ban(status):
                await self._proxy_outcome(state, f"ban signal: HTTP {status} from {final}")
            else:
                await self._proxy_outcome(state, None, started)
            state.pages += 1
            sink.page(final, status)
            return self._fail(sink, state, "http_error", f"HTTP {status} from {final}")
        try:
            if cfg["wait_until"] != "networkidle":
                await network.settle()
            if cfg.get("wait_for"):
                try:
                    await page.wait_for_selector(
                        wait_selector(cfg["wait_for"]),
                        state="attached",
                        timeout=min(timeout_ms // 2, WAIT_FOR_CAP * 1000),
                    )
                except PlaywrightTimeout:
                    sink.log("WARNING", f"wait_for {cfg['wait_for']!r} not found on {final}")
            await _scroll(page, int(cfg.get("scroll") or 0))
            size = await page.evaluate(_DOM_SIZE)
            if int(size or 0) > spec.max_page_bytes:  # measured in the page: never copied here
                state.pages += 1
                sink.page(final, status)
                return self._fail(sink, state, "page_too_large", _too_large(final, spec))
            html = await page.content()
        except PlaywrightError as exc:
            self._check_browser(page, exc)
            with contextlib.suppress(Exception):
                await page.close()  # a tab in an unknown state: the worker opens a new one
            return self._fail(sink, state, "fetch_error", f"{str(exc).splitlines()[0]} ({url})")
        if is_ban(status, html):
            await self._proxy_outcome(state, f"ban signal: captcha page at {final}")
        else:
            await self._proxy_outcome(state, None, started)
        if sink.should_stop:  # cancelled while this page rendered: report nothing more
            return []
        state.pages += 1
        state.pages_ok += 1
        sink.page(final, status)
        selector = extract.parse(html, final)
        extract.observe(sink, final, selector)
        budget = extract.page_budget(spec)
        items = extract.extract_items(selector, spec.selectors, cfg.get("item_selector"), budget)
        for note in sorted(budget.notes):
            sink.log("WARNING", f"{final}: {note}")
        state.items += len(items)
        sink.items(final, items)
        self._blocked(sink, final)
        if not cfg.get("follow_links"):
            return []
        return extract.extract_links(selector, final, cfg.get("link_selector"))

    @staticmethod
    async def _proxy_outcome(state: _State, ban: str | None, started: float = 0.0) -> None:
        """Record one page's outcome on the job's pool proxy: a ban reason, or a success."""
        if state.proxy_id is None:
            return
        if ban is not None:
            await asyncio.to_thread(state.rotation.failed, state.proxy_id, ban, True)
        else:
            elapsed = asyncio.get_running_loop().time() - started
            await asyncio.to_thread(
                state.rotation.succeeded, state.proxy_id, time.monotonic() - elapsed
            )

    @staticmethod
    def _check_browser(page: Any, exc: BaseException) -> None:
        # Our own closing only happens after the workers are cancelled, so a closed target here
        # means Chromium went away (its error can arrive before the 'disconnected' event).
        browser = page.context.browser
        if "has been closed" in str(exc) or (browser is not None and not browser.is_connected()):
            raise BrowserCrashed("the browser crashed or disconnected during the job") from exc

    def _proxy_failure(self, url: str, kind: str | None = None) -> dict[str, str] | None:
        """A navigation the egress proxy could not complete, as describe_error would say it."""
        if kind is None:
            egress = get_pool(self.settings).egress
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            kind = egress.failed.get(f"{parts.hostname}:{port}") if egress else None
        messages = {
            "dns_error": f"DNS lookup failed for {url}",
            "connection_refused": f"connection refused by {url}",
            "timeout": f"request timed out: {url}",
        }
        if kind is None:
            return None
        return {"type": kind, "message": messages.get(kind, f"could not fetch {url}")}

    def _blocked(self, sink: Sink, url: str) -> str | None:
        """Log the targets the egress proxy refused since the last look (a page's images,
        scripts, frames, redirects…); the message for `url`'s own host when it was one."""
        egress = get_pool(self.settings).egress
        if egress is None:
            return None
        parts = urlsplit(url)
        own = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        found = None
        for target, reason in egress.take_blocked().items():
            message = f"blocked target {target}: {reason}; not fetched"
            if target == own:
                found = message
            else:
                sink.log("WARNING", message)
        return found

    @staticmethod
    def _fail(sink: Sink, state: _State, kind: str, message: str) -> list[str]:
        state.errors.append({"type": kind, "message": message})
        sink.log("ERROR", message)
        return []

    @staticmethod
    def _result(state: _State) -> CrawlResult:
        result = CrawlResult(
            pages=state.pages,
            items=state.items,
            finish_reason=state.stop_reason or "finished",
            errors=[e["message"] for e in state.errors],
        )
        if state.fatal is not None:
            result.error = state.fatal
            result.finish_reason = state.fatal["type"]
        elif state.pages_ok == 0 and state.errors and not state.stop_reason:
            result.error = state.errors[0]
        return result
