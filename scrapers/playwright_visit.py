"""One page in Chromium: navigate, wait, read it through the job's extraction, and record the
outcome on the job's pool proxy (a ban asks the engine for another proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapers import captures, charsets, extract, failures, visit_steps
from scrapers.auto import judge_rendered
from scrapers.browser_pool import BrowserCrashed, get_pool
from scrapers.crawl_rules import LinkRules, Seen, clean_url
from scrapers.engine import AutoPlan, Sink
from scrapers.page_actions import PageActions
from scrapers.pages import PageOutcome, PageProblems, read_page
from scrapers.proxies import Rotation
from scrapers.rendering import NAV_TIMEOUT_CAP, WAIT_FOR_CAP, _scroll, describe_error, wait_selector
from scrapers.visit_steps import Next, VisitOutcome
from shared import politeness
from shared.jobspec import AutoDecision, FirstPage, JobSpec, file_outputs
from shared.schemes import is_web_url
from shared.settings import Settings

# job warnings (one each, however many pages): the job log names the pages
CAPTURE_NOTES = {
    "screenshot_too_large": "a screenshot did not fit MAX_FILE_BYTES and was not stored",
    "pdf_too_large": "a PDF was over MAX_FILE_BYTES and was not stored; the job log names "
    "the pages",
    "clipped": "screenshots of long pages were clipped (MAX_FILE_BYTES, or 20000 px); the job "
    "log names the pages",
    "failed": "a screenshot or PDF failed; the job log says why",
}

_DOM_SIZE = "() => document.documentElement ? document.documentElement.outerHTML.length : 0"

if TYPE_CHECKING:
    from playwright.async_api import Page

    from scrapers.rendering import _Network


class State:
    """One browser job's frontier, counters and decisions (the pool's loop only)."""

    def __init__(self, spec: JobSpec, plan: AutoPlan):
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
        self.session: dict[str, Any] | None = None  # every context of the job starts with it
        # auto: decide on the first page rendered (compare with the static figures), or check
        # that a remembered decision still finds something
        self.plan = plan
        self.deciding = plan.compare_with is not None  # only then does one page go alone
        self.checking = plan.check_first
        self.decision: AutoDecision | None = None
        self.first_page: FirstPage | None = None
        self.deadline: float | None = None  # the job's, in the loop's time (actions' budget)
        self.clicked = 0  # pages reached by next_click without a URL of their own
        self.scroll_short: str | None = None  # the first page that stopped growing early

    def room(self, max_pages: int) -> bool:
        """Whether another page fits under max_pages (queued URLs and clicked pages)."""
        return len(self.seen) + self.clicked < max_pages

    def enqueue(self, url: str, depth: int, max_pages: int) -> None:
        """Queue `url` unless seen; max_pages caps every page ever queued, errors included."""
        if self.room(max_pages):
            url = clean_url(url)
            if self.seen.add(url):
                self.frontier.append((url, depth))


class PageVisits(PageActions):
    """The per-page half of the Playwright engine: one visit as explicit stages (gate,
    navigate, check the response, settle, read), each judged by scrapers/visit_steps.py."""

    settings: Settings

    async def _visit(
        self,
        page: Page,
        network: _Network,
        url: str,
        spec: JobSpec,
        sink: Sink,
        state: State,
        start: bool = False,
        crawl_delay: float | None = None,
    ) -> list[str]:
        """Render one page, report it and its items; returns the links to follow. On a
        `start` page the job's actions run first, and next_click pages through after it."""
        started = asyncio.get_running_loop().time()
        if not await self._act(visit_steps.gate(url), page, url, url, 0, sink, state, started):
            return []
        seen = await self._navigate(page, url, spec, sink, state, started, crawl_delay)
        if seen is None:
            return []
        refused = self._blocked(sink, url)
        judged = visit_steps.judge_response(seen, spec.max_page_bytes, refused)
        if not await self._act(judged, page, url, seen.final, seen.status, sink, state, started):
            return []
        settled = await self._settle(page, network, seen, spec, sink, state, started, start)
        if settled is None:
            return []
        html, seen = settled
        judged = visit_steps.judge_content(seen.status, html, seen.final)
        if not await self._act(judged, page, url, seen.final, seen.status, sink, state, started):
            return []
        if sink.should_stop:  # cancelled while this page rendered: report nothing more
            return []
        links = await self._read(html, seen, spec, sink, state)
        if file_outputs(spec.config) and state.stop_reason != "auto_static":
            await self._capture(page, seen.final, spec, sink, state)
        if start and spec.config.get("next_click") and not page.is_closed():
            links += await self._click_through(page, network, seen, spec, sink, state)
        return links

    async def _capture(self, page: Page, url: str, spec: JobSpec, sink: Sink, state: State) -> None:
        """The page's files (`output`: screenshot, pdf), after its extraction. A capture
        that fails or does not fit MAX_FILE_BYTES is logged and warned about; the crawl goes
        on."""
        from playwright.async_api import Error as PlaywrightError

        limit = self.settings.max_file_bytes
        for kind in file_outputs(spec.config):
            if sink.should_stop:
                return
            notes: list[str] = []
            try:
                if kind == "screenshot":
                    data = await captures.screenshot(
                        page, full_page=True, max_bytes=limit, notes=notes
                    )
                else:
                    data = await captures.pdf(page, max_bytes=limit)
            except captures.CaptureTooLarge as exc:
                sink.log("WARNING", str(exc))
                state.notes.append(CAPTURE_NOTES[f"{kind}_too_large"])
                continue
            except PlaywrightError as exc:
                self._check_browser(page, exc)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                sink.log("WARNING", f"the {kind} of {url} failed: {first}")
                state.notes.append(CAPTURE_NOTES["failed"])
                continue
            for note in notes:
                sink.log("WARNING", note)
                state.notes.append(CAPTURE_NOTES["clipped"])
            await asyncio.to_thread(sink.file, url, kind, captures.CONTENT_TYPES[kind], data)

    async def _act(
        self,
        step: VisitOutcome,
        page: Page,
        url: str,
        final: str,
        status: int,
        sink: Sink,
        state: State,
        started: float,
    ) -> bool:
        """Carry out one step's outcome; True when the visit goes on."""
        if step.ban is not None:
            self._pool_proxy_failed(url)  # the guard's mark for the host is used up
            if await self._proxy_outcome(state, step.ban, url):
                return False  # queued again, for another proxy
        elif step.proxy_ok:
            await self._proxy_outcome(state, None, url, started)
        if step.close_tab:
            with contextlib.suppress(Exception):
                await page.close()
        if step.next is Next.GO_ON:
            return True
        if step.report_page:
            state.pages += 1
            sink.page(final, status)
        assert step.problem is not None
        self._fail(sink, state, step.problem["type"], step.problem["message"], step.raw)
        return False

    async def _navigate(
        self,
        page: Page,
        url: str,
        spec: JobSpec,
        sink: Sink,
        state: State,
        started: float,
        crawl_delay: float | None = None,
    ) -> visit_steps.Response | None:
        """`goto` the page, holding one of the site's fleet-wide slots (shared/politeness.py)
        until the page loaded; its response, or None when the visit ended there."""
        from playwright.async_api import Error as PlaywrightError

        timeout_ms = max(1, min(int(spec.config["timeout_seconds"]), NAV_TIMEOUT_CAP)) * 1000
        try:
            await charsets.watch(page, spec.max_page_bytes)  # read text as the static engine does
            async with politeness.for_this_loop(self.settings).slot(
                url, str(spec.job_id), crawl_delay
            ):
                response = await page.goto(
                    url, wait_until=spec.config["wait_until"], timeout=timeout_ms
                )
        except PlaywrightError as exc:
            self._check_browser(page, exc)
            refused = self._blocked(sink, url)
            problem, raw = describe_error(exc, url)
            step = visit_steps.navigation_failed(
                problem,
                raw,
                str(exc),
                refused,
                self._proxy_failure(url) if not refused else None,
                self._pool_proxy_failed(url) if not refused else False,
            )
            await self._act(step, page, url, url, 0, sink, state, started)
            return None
        final = page.url
        if is_web_url(final):  # a tab elsewhere is refused next (judge_response)
            state.seen.add(final)
        headers = dict(response.headers) if response is not None else {}
        status = response.status if response is not None else 200
        response_url = response.url if response is not None else final
        return visit_steps.Response(url, final, response_url, status, headers)

    async def _settle(
        self,
        page: Page,
        network: _Network,
        seen: visit_steps.Response,
        spec: JobSpec,
        sink: Sink,
        state: State,
        started: float,
        start: bool = False,
    ) -> tuple[str, visit_steps.Response] | None:
        """Let the page settle (network, a start page's actions, wait_for, scroll), check it,
        and read its HTML (with the response as the actions left it); None when the visit
        ended there."""
        from playwright.async_api import Error as PlaywrightError

        try:
            if spec.config["wait_until"] != "networkidle":
                await network.settle()
            if start and spec.config.get("actions"):
                acted = await self._run_actions(page, network, seen, spec, sink, state)
                if acted is None:
                    return None
                seen = acted
            html = await self._ready(page, network, seen, spec, sink, state, started)
        except PlaywrightError as exc:
            self._check_browser(page, exc)
            step = visit_steps.settle_failed(seen.url, str(exc), type(exc).__name__)
            await self._act(step, page, seen.url, seen.final, seen.status, sink, state, started)
            return None
        return (html, seen) if html is not None else None

    async def _ready(
        self,
        page: Page,
        network: _Network,
        seen: visit_steps.Response,
        spec: JobSpec,
        sink: Sink,
        state: State,
        started: float,
    ) -> str | None:
        """wait_for and scroll, then the page's HTML once its size is checked (None: the
        visit ended there, reported). Also for each page a next_click reaches."""
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        cfg = spec.config
        timeout_ms = max(1, min(int(cfg["timeout_seconds"]), NAV_TIMEOUT_CAP)) * 1000
        wait_for = cfg.get("wait_for")
        if wait_for:
            try:
                await page.wait_for_selector(
                    wait_selector(wait_for),
                    state="attached",
                    timeout=min(timeout_ms // 2, WAIT_FOR_CAP * 1000),
                )
            except PlaywrightTimeout:
                sink.log("WARNING", f"wait_for {wait_for!r} not found on {seen.final}")
        times = int(cfg.get("scroll") or 0)
        grown = await _scroll(page, times, network, state.deadline)
        if grown < times:
            sink.log("INFO", f"scroll: {seen.final} stopped growing after {grown} of {times}")
            if state.scroll_short is None:
                state.scroll_short = seen.final
                state.notes.append(
                    f"scroll: the page stopped growing after {grown} of {times} scrolls "
                    f"({seen.final}): it has no more, or loads it another way"
                )
        size = int(await page.evaluate(_DOM_SIZE) or 0)
        step = visit_steps.judge_rendered(seen.final, size, spec.max_page_bytes, page.url)
        if not await self._act(step, page, seen.url, seen.final, seen.status, sink, state, started):
            return None
        html: str = await page.content()
        return html

    async def _read(
        self, html: str, seen: visit_steps.Response, spec: JobSpec, sink: Sink, state: State
    ) -> list[str]:
        """Report the page and its items (auto decides on the first); the links to follow."""
        final = seen.final
        state.pages += 1
        state.pages_ok += 1
        sink.page(final, seen.status)
        # extraction (and trafilatura) off the loop: other tabs keep rendering meanwhile
        outcome = await asyncio.to_thread(
            read_page, spec, html, final, seen.headers.get("content-type", "")
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
        if not spec.config.get("follow_links") or outcome.selector is None:
            return []
        links = extract.extract_links(
            outcome.selector,
            final,
            spec.config.get("link_selector"),
            same_site=not state.rules.domains,
        )
        return [link for link in links if state.rules.allows(link)]

    @staticmethod
    def _decide(state: State, outcome: PageOutcome, url: str, sink: Sink) -> bool:
        """auto, on the first rendered page: False when the job goes back to the static
        engine (this page's items are then left to it)."""
        state.deciding = state.checking = False
        judged = judge_rendered(outcome, url, state.plan)
        state.first_page = judged.first_page
        if judged.decision is not None:
            state.decision = judged.decision
            sink.log("INFO", f"auto: {judged.decision['reason']}")
        if judged.note:
            state.notes.append(judged.note)
        if judged.back_to_static:
            state.stop_reason = "auto_static"
            return False
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
    def _check_browser(page: Page, exc: BaseException) -> None:
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
