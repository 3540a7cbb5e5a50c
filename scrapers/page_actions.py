"""The interactive half of a browser page visit: a job's `actions` on a start page before it
is extracted, and `next_click` pagination after it (click, wait for the page to change,
extract, until the control is gone, max_pages, or a click that changes nothing). A page a
click reaches without a URL of its own is reported as that URL with `#click=N` (N: its place
in the pagination), so that its items are kept apart from the other pages'.

Whatever a step or a click makes the tab load is judged like a navigation of the crawl: a
response the egress guard refused (a blocked address) fails the page as `blocked_target`,
and a tab that ends up on a non-http(s) URL is never read.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urldefrag

from scrapers import captures, visit_steps
from scrapers.actions import ActionFailed, ActionRunner, Budget, Capture
from scrapers.rendering import fingerprint, next_change, settle_dom, wait_selector, watch_change
from shared.jobspec import file_outputs
from shared.settings import Settings

if TYPE_CHECKING:
    from playwright.async_api import Page, Response

    from scrapers.engine import Sink
    from scrapers.playwright_visit import State
    from scrapers.rendering import _Network
    from scrapers.visit_steps import VisitOutcome
    from shared.jobspec import JobSpec

ACTION_FAILED = "action_failed"


class NavigationWatch:
    """The main frame's last navigation response while open (a click or a script may
    navigate the tab)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.last: Response | None = None

    def _seen(self, response: Response) -> None:
        with contextlib.suppress(Exception):  # a frame gone meanwhile
            if response.request.is_navigation_request() and response.frame == self.page.main_frame:
                self.last = response

    def __enter__(self) -> NavigationWatch:
        self.page.on("response", self._seen)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.page.remove_listener("response", self._seen)


class PageActions:
    """Mixed into the Playwright engine with scrapers/playwright_visit.PageVisits."""

    settings: Settings

    # provided by PageVisits
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
        raise NotImplementedError

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
        raise NotImplementedError

    async def _read(
        self, html: str, seen: visit_steps.Response, spec: JobSpec, sink: Sink, state: State
    ) -> list[str]:
        raise NotImplementedError

    def _blocked(self, sink: Sink, url: str) -> str | None:
        raise NotImplementedError

    async def _capture(self, page: Page, url: str, spec: JobSpec, sink: Sink, state: State) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ actions

    def _budget(self, state: State) -> Budget:
        deadline = state.deadline
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + 3600
        return Budget(deadline, float(self.settings.action_timeout_seconds))

    async def _run_actions(
        self,
        page: Page,
        network: _Network,
        seen: visit_steps.Response,
        spec: JobSpec,
        sink: Sink,
        state: State,
    ) -> visit_steps.Response | None:
        """The job's actions on a start page; the page as they left it (a step may have
        navigated), or None when the visit ended (a step failed: the job fails)."""
        steps = list(spec.config.get("actions") or [])
        capture = self._screenshot_step(spec, sink, page)
        runner = ActionRunner(page, network, self._budget(state), capture, sink.log)
        with NavigationWatch(page) as nav:
            try:
                await runner.run(steps)
            except ActionFailed as exc:
                state.fatal = {"type": ACTION_FAILED, "message": f"{exc} (on {seen.final})"}
                state.stop_reason = ACTION_FAILED
                sink.log("ERROR", state.fatal["message"])
                with contextlib.suppress(Exception):  # a script may hold the tab: a new one
                    await asyncio.wait_for(page.close(), 5)
                return None
        return await self._landed(page, nav.last, seen, spec, sink, state)

    async def _landed(
        self,
        page: Page,
        response: Response | None,
        seen: visit_steps.Response,
        spec: JobSpec,
        sink: Sink,
        state: State,
    ) -> visit_steps.Response | None:
        """Where the tab is after steps or a click: `seen` when it did not navigate, else the
        new response judged like any navigation (None: refused or failed, reported)."""
        if response is None and page.url == seen.final:
            return seen
        if response is not None:
            budget = self._budget(state)
            with contextlib.suppress(Exception):  # slow load: read what is there
                await page.wait_for_load_state(
                    "load", timeout=max(1.0, min(budget.default, budget.left())) * 1000
                )
        now = visit_steps.Response(
            seen.url,
            page.url,
            response.url if response is not None else page.url,
            response.status if response is not None else seen.status,
            dict(response.headers) if response is not None else dict(seen.headers),
        )
        refused = self._blocked(sink, now.response_url) if response is not None else None
        judged = visit_steps.judge_response(now, spec.max_page_bytes, refused)
        started = asyncio.get_running_loop().time()
        if not await self._act(judged, page, seen.url, now.final, now.status, sink, state, started):
            return None
        return now

    def _screenshot_step(self, spec: JobSpec, sink: Sink, page: Page) -> Capture:
        """A `screenshot` step: the page as it is now, stored as a file of the job (clipped to
        MAX_FILE_BYTES like the `output` screenshots; one that cannot fit is a warning)."""

        async def capture(full_page: bool) -> None:
            notes: list[str] = []
            url = page.url
            try:
                data = await captures.screenshot(
                    page, full_page=full_page, max_bytes=self.settings.max_file_bytes, notes=notes
                )
            except captures.CaptureTooLarge as exc:
                sink.log("WARNING", str(exc))
                return
            for note in notes:
                sink.log("WARNING", note)
            content_type = captures.CONTENT_TYPES["screenshot"]
            await asyncio.to_thread(sink.file, url, "screenshot", content_type, data)

        return capture

    # ------------------------------------------------------------------ next_click

    async def _click_through(
        self,
        page: Page,
        network: _Network,
        seen: visit_steps.Response,
        spec: JobSpec,
        sink: Sink,
        state: State,
    ) -> list[str]:
        """next_click: click to each next page and extract it; the links those pages give."""
        from playwright.async_api import Error as PlaywrightError

        query = str(spec.config.get("next_click"))
        selector = wait_selector(query)
        max_pages = int(spec.config["max_pages"])
        links: list[str] = []
        current, number = seen, 1
        while not sink.should_stop and not state.stop_reason:
            if not state.room(max_pages):
                sink.log("INFO", f"next_click: max_pages ({max_pages}) reached")
                break
            try:
                changed, response = await self._click_once(
                    page, network, query, selector, number, sink, state
                )
                if not changed:
                    break
                now = await self._landed(page, response, current, spec, sink, state)
                if now is None:
                    break
                reported = now
                if now.final == current.final or not state.seen.add(now.final):
                    state.clicked += 1  # no new URL: counted here toward max_pages
                    # items are kept per page URL: the page is named by its click
                    where = urldefrag(now.final).url
                    reported = dataclasses.replace(now, final=f"{where}#click={number + 1}")
                html = await self._ready(page, network, now, spec, sink, state, 0.0)
            except PlaywrightError as exc:
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                state.notes.append(f"next_click {query!r}: page {number + 1} failed ({text})")
                break
            if html is None:
                break
            number += 1
            current = now
            links += await self._read(html, reported, spec, sink, state)
            if file_outputs(spec.config):
                await self._capture(page, reported.final, spec, sink, state)
        return links

    async def _click_once(
        self,
        page: Page,
        network: _Network,
        query: str,
        selector: str,
        number: int,
        sink: Sink,
        state: State,
    ) -> tuple[bool, Response | None]:
        """Click the control on page `number` and wait until the page changed and settled:
        (True, the navigation's response or None when the page changed in place), or
        (False, None) when the pagination ends here (no control; a click that changed nothing
        is a job warning)."""
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        control = page.locator(selector).first
        if not await control.count() or not (
            await control.is_visible() and await control.is_enabled()
        ):
            sink.log("INFO", f"next_click {query!r}: no control on page {number}: the last page")
            return False, None
        budget = self._budget(state)
        seconds = min(budget.default, budget.left())
        if seconds <= 0:
            return False, None
        loop = asyncio.get_running_loop()
        before_url, before = page.url, await fingerprint(page)
        await watch_change(page)
        with NavigationWatch(page) as nav:
            try:
                await control.click(timeout=seconds * 1000)
            except PlaywrightTimeout:
                state.notes.append(
                    f"next_click {query!r}: the control on page {number} could not be clicked "
                    f"within {seconds:g} s; stopped there"
                )
                return False, None
            limit = loop.time() + seconds
            if not await _changed(page, network, nav, before_url, before, limit):
                state.notes.append(
                    f"next_click {query!r}: a click on page {number} did not change the page "
                    f"within {seconds:g} s; stopped there (nothing extracted twice)"
                )
                return False, None
            return True, nav.last


async def _changed(
    page: Page, network: _Network, nav: NavigationWatch, url: str, before: str, limit: float
) -> bool:
    """Whether the click navigated the tab, or changed its DOM from `before`, by `limit`:
    woken by the page's first change after the click (rendering.watch_change), then read once
    it settled (rendering.settle_dom). A change that leaves the same DOM (a re-render of the
    same page) is waited past: extracting it again would only give duplicates."""
    from playwright.async_api import Error as PlaywrightError

    loop = asyncio.get_running_loop()
    while (left := limit - loop.time()) > 0:
        try:
            seen = await next_change(page, left)
        except PlaywrightError:
            return True  # the document is being replaced: a navigation
        if nav.last is not None or page.url != url:
            return True  # a navigation: its load is waited for where it lands
        if not seen:
            return False
        await settle_dom(page, network, limit)
        if nav.last is not None or page.url != url:
            return True
        try:
            await watch_change(page)  # armed again before comparing: no change slips by
            if await fingerprint(page) != before:
                return True
        except PlaywrightError:
            return True
    return False
