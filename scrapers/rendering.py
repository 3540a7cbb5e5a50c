"""Page-level helpers of the browser engine: waits, scrolling, robots.txt, error names."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from protego import Protego

from scrapers import failures, robots
from shared.selectors import compile_selector

NAV_TIMEOUT_CAP = 180  # seconds, as the Scrapy engine's DOWNLOAD_TIMEOUT
# A missing wait_for selector is a warning, not a job timeout: wait at most half the job's time.
WAIT_FOR_CAP = 15
SCROLL_SETTLE_MS = 500
# After load, a page's scripts usually fetch its content (XHR/fetch) and then render it: wait
# until the tab has made no request for SETTLE_QUIET s, bounded so chatty pages still finish.
SETTLE_QUIET = 0.15
SETTLE_CAP = 3.0
POLL = 0.25  # how often cancellation is checked while pages are in flight
BLOCKED_TYPES = frozenset({"image", "media", "font"})  # never change the DOM we extract
_PSEUDO = re.compile(r"::(text|attr\([^)]*\))\s*$")

if TYPE_CHECKING:
    from playwright.async_api import APIRequestContext, Page, Request, Route


def describe_error(exc: BaseException, url: str) -> tuple[dict[str, str], str]:
    """A failed navigation as ({type, message} a person can read, the raw detail for the log)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if isinstance(exc, PlaywrightTimeout):
        return failures.problem("timeout", url), first[:1000]
    return failures.problem(failures.chromium_kind(text) or "fetch_error", url), first[:1000]


def wait_selector(query: str) -> str:
    """Our selector syntax as a Playwright selector (XPath prefixed, ::text/::attr dropped)."""
    sel = compile_selector(query)
    return f"xpath={sel.query}" if sel.kind == "xpath" else _PSEUDO.sub("", sel.query)


class _Robots:
    """robots.txt per origin, fetched through the job's own context (or kept from an earlier
    job of this process: scrapers/robots.py), read by Protego: the parser Scrapy uses, so both
    engines obey the same rules alike."""

    def __init__(self, request: APIRequestContext, user_agent: str) -> None:
        self._request = request
        self._agent = user_agent
        self._fetches: dict[str, asyncio.Task] = {}

    async def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._fetches:
            self._fetches[origin] = asyncio.ensure_future(self._fetch(origin))
        parser = await asyncio.shield(self._fetches[origin])
        return parser is None or parser.can_fetch(url, self._agent)

    async def _fetch(self, origin: str) -> Protego | None:
        kept = robots.recall("playwright", origin)  # an earlier job's, ROBOTS_CACHE_SECONDS
        if kept is not robots.MISSING:
            return None if kept is None else Protego.parse(kept)
        try:
            response = await self._request.get(f"{origin}/robots.txt", timeout=10_000)
            # missing or broken robots.txt: everything allowed
            body = await response.text() if response.status == 200 else None
        except Exception:
            return None  # not kept: the next job tries again
        robots.keep("playwright", origin, body)
        return None if body is None else Protego.parse(body)


async def _block_heavy(route: Route) -> None:
    if route.request.resource_type in BLOCKED_TYPES:
        await route.abort()
    else:
        await route.continue_()


async def _scroll(page: Page, times: int) -> None:
    """Scroll to the bottom `times` times, each time waiting briefly for the page to grow."""
    for _ in range(times):
        height = await page.evaluate("document.body.scrollHeight")
        await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        try:
            await page.wait_for_function(
                "h => document.body.scrollHeight > h", arg=height, timeout=SCROLL_SETTLE_MS
            )
        except Exception:
            # Nothing grew: we are at the bottom for good, and another scrollTo to the same
            # spot fires no scroll event, so further rounds could not load anything.
            return


class _Network:
    """Requests in flight in one tab, to wait until a page's own scripts stop fetching."""

    def __init__(self, page: Page) -> None:
        self.pending: set[Request] = set()
        self.changed = asyncio.Event()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request: Request) -> None:
        self.pending.add(request)
        self.changed.set()

    def _ended(self, request: Request) -> None:
        self.pending.discard(request)
        self.changed.set()

    async def settle(self, quiet: float = SETTLE_QUIET, cap: float = SETTLE_CAP) -> None:
        """Return once no request was in flight for `quiet` s, or after `cap` s at most."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cap
        while (left := deadline - loop.time()) > 0:
            self.changed.clear()
            idle = not self.pending
            try:
                await asyncio.wait_for(self.changed.wait(), min(quiet, left) if idle else left)
            except TimeoutError:
                if idle:
                    return
