"""One page in Chromium: navigate, wait, read it through the job's extraction, and record the
outcome on the job's pool proxy (a ban asks the engine for another proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from scrapers import charsets, extract, failures
from scrapers.auto import figures, rendered_verdict
from scrapers.browser_pool import BrowserCrashed, get_pool
from scrapers.crawl_rules import LinkRules, Seen, clean_url
from scrapers.egress import BLOCKED_HEADER, ERROR_HEADER, PROXY_ERROR_HEADER
from scrapers.engine import Sink
from scrapers.pages import PageProblems, read_page
from scrapers.proxies import CONNECTION_BAN, Rotation
from scrapers.rendering import NAV_TIMEOUT_CAP, WAIT_FOR_CAP, _scroll, describe_error, wait_selector
from shared.jobspec import JobSpec
from shared.proxies import is_ban
from shared.schemes import is_web_url, skipped
from shared.targets import BLOCKED_TARGET

_DOM_SIZE = "() => document.documentElement ? document.documentElement.outerHTML.length : 0"


class State:
    """One browser job's frontier, counters and decisions (the pool's loop only)."""

    def __init__(self, spec: JobSpec, compare_with: dict[str, Any] | None, check_first: bool):
        self.pages = 0
        self.pages_ok = 0
        self.items = 0
        self.seen = Seen()
        self.rules = LinkRules(spec.config)
        self.errors: list[dict[str, str]] = []
        self.notes: list[str] = []
        self.problems = PageProblems()
        self.stop_reason: str | None = None
        self.fatal: dict[str, str] | None = None
        self.frontier: deque[tuple[str, int]] = deque()
        self.busy = 0  # pages in flight: an empty frontier means "done" only when none are
        self.wake = asyncio.Event()
        self.rotation = Rotation("none")
        self.proxy_id: str | None = None  # the pool proxy of the current context
        self.banned_proxies: list[str] = []
        self.repick = False  # the current proxy was banned: a new context for the rest
        self.tries: dict[str, int] = {}
        self.started = False
        # auto: decide on the first page rendered (compare with the static figures), or check
        # that a remembered decision still finds something
        self.compare_with = compare_with
        self.deciding = compare_with is not None  # only then does one page go alone
        self.checking = check_first
        self.decision: dict[str, Any] | None = None
        self.first_page: dict[str, Any] | None = None

    def enqueue(self, url: str, depth: int, max_pages: int) -> None:
        """Queue `url` unless seen; max_pages caps every page ever queued, errors included."""
        if len(self.seen) < max_pages:
            url = clean_url(url)
            if self.seen.add(url):
                self.frontier.append((url, depth))


def _too_large(url: str, spec: JobSpec) -> str:
    return failures.sentence("page_too_large", url).replace(
        "MAX_PAGE_BYTES", f"MAX_PAGE_BYTES={spec.max_page_bytes}"
    )


class PageVisits:
    """The per-page half of the Playwright engine (needs `self.settings`)."""

    settings: Any

    async def _visit(
        self, page: Any, network: Any, url: str, spec: JobSpec, sink: Sink, state: State
    ) -> list[str]:
        """Render one page, report it and its items; returns the links to follow."""
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        cfg = spec.config
        timeout_ms = max(1, min(int(cfg["timeout_seconds"]), NAV_TIMEOUT_CAP)) * 1000
        started = asyncio.get_running_loop().time()
        if not is_web_url(url):  # queued URLs are checked already: this is the last gate
            return self._fail(sink, state, BLOCKED_TARGET, skipped(url, "page"))
        try:
            await charsets.watch(page, spec.max_page_bytes)  # read text as the static engine does
            response = await page.goto(url, wait_until=cfg["wait_until"], timeout=timeout_ms)
        except PlaywrightError as exc:
            self._check_browser(page, exc)
            refused = self._blocked(sink, url)
            if refused:
                return self._fail(sink, state, BLOCKED_TARGET, refused)
            problem, raw = describe_error(exc, url)
            problem = self._proxy_failure(url) or problem
            through_proxy = (
                problem["type"] in ("timeout", "connection_refused")
                or "PROXY" in str(exc)
                or self._pool_proxy_failed(url)
            )
            ban = f"{CONNECTION_BAN}: {problem['type']}"
            if through_proxy and await self._proxy_outcome(state, ban, url):
                return []
            if problem["type"] == "fetch_error":  # e.g. the tab crashed: the worker opens another
                with contextlib.suppress(Exception):
                    await page.close()
            return self._fail(sink, state, problem["type"], problem["message"], raw)
        final = page.url
        if not is_web_url(final):  # however the tab got there, nothing of it is read
            return self._fail(sink, state, BLOCKED_TARGET, skipped(final, "page"))
        state.seen.add(final)
        refused = self._blocked(sink, url)
        headers = response.headers if response is not None else {}
        if headers.get(BLOCKED_HEADER.lower()):
            # a redirect led there: name the target refused and why, not just the page
            reason = f"blocked target {response.url}: {headers[BLOCKED_HEADER.lower()]}"
            return self._fail(sink, state, BLOCKED_TARGET, refused or f"{url}: {reason}")
        if headers.get(PROXY_ERROR_HEADER.lower()):
            # the job's pool proxy, behind the egress guard, failed: another proxy may do
            self._pool_proxy_failed(url)
            kind = headers[PROXY_ERROR_HEADER.lower()]
            if await self._proxy_outcome(state, f"{CONNECTION_BAN}: {kind}", url):
                return []
            problem = failures.problem(kind, url)
            message = f"Could not fetch {url}: the job's proxy failed ({kind.replace('_', ' ')})."
            return self._fail(sink, state, problem["type"], message)
        if headers.get(ERROR_HEADER.lower()):
            # the egress proxy could not reach it: report it as a direct fetch would
            failure = self._proxy_failure(url, headers[ERROR_HEADER.lower()])
            if failure is not None:
                return self._fail(sink, state, failure["type"], failure["message"])
        status = response.status if response is not None else 200
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > spec.max_page_bytes:
            state.pages += 1
            sink.page(final, status)
            return self._fail(sink, state, "page_too_large", _too_large(final, spec))
        if not 200 <= status < 300:
            if is_ban(status):
                if await self._proxy_outcome(state, f"ban signal: HTTP {status} from {final}", url):
                    return []
            else:
                await self._proxy_outcome(state, None, url, started)
            state.pages += 1
            sink.page(final, status)
            problem = failures.http_problem(status, final)
            return self._fail(sink, state, problem["type"], problem["message"])
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
            if not is_web_url(page.url):  # the page navigated itself while it settled
                return self._fail(sink, state, BLOCKED_TARGET, skipped(page.url, "page"))
            html = await page.content()
        except PlaywrightError as exc:
            self._check_browser(page, exc)
            with contextlib.suppress(Exception):
                await page.close()  # a tab in an unknown state: the worker opens a new one
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problem = failures.problem("fetch_error", url)
            return self._fail(sink, state, problem["type"], problem["message"], first)
        if is_ban(status, html):
            if await self._proxy_outcome(state, f"ban signal: captcha page at {final}", url):
                return []
        else:
            await self._proxy_outcome(state, None, url, started)
        if sink.should_stop:  # cancelled while this page rendered: report nothing more
            return []
        state.pages += 1
        state.pages_ok += 1
        sink.page(final, status)
        # extraction (and trafilatura) off the loop: other tabs keep rendering meanwhile
        outcome = await asyncio.to_thread(
            read_page, spec, html, final, headers.get("content-type", "")
        )
        if outcome.selector is not None:
            extract.observe(sink, final, outcome.selector)
        for note in outcome.notes:
            sink.log("WARNING", note)
        state.problems.add(outcome)
        if (state.deciding or state.checking) and not self._decide(state, outcome, final, sink):
            return []
        state.items += len(outcome.items)
        sink.items(final, outcome.items)
        self._blocked(sink, final)
        if not cfg.get("follow_links") or outcome.selector is None:
            return []
        links = extract.extract_links(
            outcome.selector, final, cfg.get("link_selector"), same_site=not state.rules.domains
        )
        return [link for link in links if state.rules.allows(link)]

    @staticmethod
    def _decide(state: State, outcome: Any, url: str, sink: Sink) -> bool:
        """auto, on the first rendered page: False when the job goes back to the static
        engine (this page's items are then left to it)."""
        state.deciding = state.checking = False
        rendered = figures(outcome, url)
        state.first_page = rendered
        if state.compare_with is not None:
            engine, reason = rendered_verdict(state.compare_with, rendered)
            state.decision = {
                "engine": engine,
                "reason": reason,
                "static_items": state.compare_with["items"],
                "rendered_items": rendered["items"],
            }
            sink.log("INFO", f"auto: {reason}")
            if engine != "playwright":
                state.stop_reason = "auto_static"
                return False
        elif not rendered["items"]:
            state.notes.append(
                "the remembered engine (playwright) found nothing on the first page: the site "
                "will be measured again on its next auto job"
            )
        return True

    async def _proxy_outcome(
        self, state: State, ban: str | None, url: str, started: float = 0.0
    ) -> bool:
        """Record one page's outcome on the job's pool proxy: a ban reason, or a success.
        True when `url` was queued again for another proxy (the page is not reported)."""
        if state.proxy_id is None:
            return False
        if ban is None:
            elapsed = asyncio.get_running_loop().time() - started
            await asyncio.to_thread(
                state.rotation.succeeded, state.proxy_id, time.monotonic() - elapsed
            )
            return False
        await asyncio.to_thread(state.rotation.failed, state.proxy_id, ban, True)
        if not state.rotation.uses_pool:
            return False
        if state.proxy_id not in state.banned_proxies:
            state.banned_proxies.append(state.proxy_id)
        state.repick = True  # the engine opens a new context through another proxy
        state.tries[url] = state.tries.get(url, 1) + 1
        if state.tries[url] > state.rotation.max_attempts:
            return False
        state.frontier.appendleft((url, 0))
        return True

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
        return failures.problem(kind, url) if kind is not None else None

    def _pool_proxy_failed(self, url: str) -> bool:
        """Whether the egress guard last failed `url`'s host because the job's pool proxy
        behind it did (dead, refusing the tunnel): then that proxy is banned for the job."""
        egress = get_pool(self.settings).egress
        if egress is None:
            return False
        parts = urlsplit(url)
        key = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        if key in egress.proxy_failed:
            egress.proxy_failed.discard(key)
            return True
        return False

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
    def _fail(sink: Sink, state: State, kind: str, message: str, raw: str = "") -> list[str]:
        state.errors.append({"type": kind, "message": message})
        sink.log("ERROR", f"{message} [{raw}]" if raw else message)
        return []
