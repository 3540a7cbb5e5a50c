"""Page-level helpers of the browser engine: waits, scrolling, robots.txt, error names."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

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


def describe_error(exc: BaseException, url: str) -> dict[str, str]:
    """A failed navigation as {type, message} a user can read."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    text = str(exc)
    if isinstance(exc, PlaywrightTimeout) or "TIMED_OUT" in text:
        return {"type": "timeout", "message": f"request timed out: {url}"}
    if "ERR_NAME_NOT_RESOLVED" in text or "ERR_NAME_RESOLUTION_FAILED" in text:
        return {"type": "dns_error", "message": f"DNS lookup failed for {url}"}
    if "ERR_CONNECTION_REFUSED" in text:
        return {"type": "connection_refused", "message": f"connection refused by {url}"}
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return {"type": "fetch_error", "message": f"{first} ({url})"}


def wait_selector(query: str) -> str:
    """Our selector syntax as a Playwright selector (XPath prefixed, ::text/::attr dropped)."""
    sel = compile_selector(query)
    return f"xpath={sel.query}" if sel.kind == "xpath" else _PSEUDO.sub("", sel.query)


class _Robots:
    """robots.txt per origin, fetched once per job through the job's own context."""

    def __init__(self, request: Any, user_agent: str) -> None:
        self._request = request
        self._agent = user_agent
        self._fetches: dict[str, asyncio.Task] = {}

    async def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._fetches:
            self._fetches[origin] = asyncio.ensure_future(self._fetch(origin))
        parser = await asyncio.shield(self._fetches[origin])
        return parser is None or parser.can_fetch(self._agent, url)

    async def _fetch(self, origin: str) -> RobotFileParser | None:
        try:
            response = await self._request.get(f"{origin}/robots.txt", timeout=10_000)
            if response.status != 200:  # missing or broken robots.txt: everything allowed
                return None
            parser = RobotFileParser()
            parser.parse((await response.text()).splitlines())
            return parser
        except Exception:
            return None


async def _block_heavy(route: Any) -> None:
    if route.request.resource_type in BLOCKED_TYPES:
        await route.abort()
    else:
        await route.continue_()


async def _scroll(page: Any, times: int) -> None:
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

    def __init__(self, page: Any) -> None:
        self.pending: set[Any] = set()
        self.changed = asyncio.Event()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request: Any) -> None:
        self.pending.add(request)
        self.changed.set()

    def _ended(self, request: Any) -> None:
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
