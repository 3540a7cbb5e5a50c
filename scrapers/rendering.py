"""Page-level helpers of the browser engine: waits, scrolling, robots.txt, error names."""

from __future__ import annotations

import asyncio
import contextlib
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

    def crawl_delay(self, url: str) -> float | None:
        """The `Crawl-delay` of the url's robots.txt for this agent, once it was read."""
        parts = urlsplit(url)
        fetch = self._fetches.get(f"{parts.scheme}://{parts.netloc}")
        if fetch is None or not fetch.done() or fetch.cancelled() or fetch.exception():
            return None
        parser = fetch.result()
        delay = parser.crawl_delay(self._agent) if parser is not None else None
        return None if delay is None else float(delay)

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


# Scrolling waits for what each scroll loads: until the page grows (height or element count),
# or until nothing grew for SCROLL_QUIET s with no request in flight; one scroll waits at most
# SCROLL_WAIT_CAP s (a request that never ends), and never past the job's deadline.
SCROLL_QUIET = 1.0
SCROLL_WAIT_CAP = 30.0
GROWTH_POLL = 0.1
_MEASURE = """() => {
  const root = document.documentElement, body = document.body;
  const height = Math.max(root ? root.scrollHeight : 0, body ? body.scrollHeight : 0);
  return [height, document.getElementsByTagName("*").length];
}"""
_TO_BOTTOM = """() => {
  const root = document.documentElement, body = document.body;
  window.scrollTo(0, Math.max(root ? root.scrollHeight : 0, body ? body.scrollHeight : 0));
}"""


async def _scroll(
    page: Page, times: int, network: _Network | None = None, deadline: float | None = None
) -> int:
    """Scroll to the bottom up to `times` times, each time waiting for what the scroll loads
    (see SCROLL_QUIET); returns how many scrolls made the page grow (fewer than `times`: it
    stopped growing, and further scrolls to the same spot would fire no scroll event)."""
    loop = asyncio.get_running_loop()
    grown = 0
    for _ in range(times):
        before = await page.evaluate(_MEASURE)
        await page.evaluate(_TO_BOTTOM)
        limit = loop.time() + SCROLL_WAIT_CAP
        if deadline is not None:
            limit = min(limit, deadline)
        if not await _grows(page, before, network, limit):
            return grown
        grown += 1
        if network is not None:  # let the batch finish arriving before the next scroll
            await network.settle(cap=max(0.0, limit - loop.time()))
    return grown


async def _grows(page: Page, before: list[int], network: _Network | None, limit: float) -> bool:
    """Whether the page grows past `before` before it stays quiet for SCROLL_QUIET s."""
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    while loop.time() < limit:
        await asyncio.sleep(GROWTH_POLL)
        height, count = await page.evaluate(_MEASURE)
        if height > before[0] or count > before[1]:
            return True
        if network is not None and network.pending:
            quiet_since = loop.time()  # a request in flight may still bring content
        elif loop.time() - quiet_since >= SCROLL_QUIET:
            return False
    return False


_FINGERPRINT = """() => {
  const s = document.documentElement ? document.documentElement.outerHTML : "";
  let h = 0;
  for (let i = 0; i < s.length; i++) { h = (Math.imul(31, h) + s.charCodeAt(i)) | 0; }
  return s.length + ":" + h;
}"""
# After a click, the waits are the page's own events, not polls: a MutationObserver armed
# before the click resolves on the first change of the DOM (or of the URL, for a history.pushState
# that changes nothing else); then the page is read once no request is in flight and its DOM
# has not changed for DOM_QUIET s (a debounce of the observer in the page) with no request
# started meanwhile. Requests are what a page waits for between renders (an XHR, a fetch); the
# quiet window only covers what scripts do between them (timers, animation frames).
DOM_QUIET = 0.1  # s the DOM stays the same, no request in flight, before a clicked page is read
OVERRUN = 1.0  # s an in-page wait may run past its own time limit before it is given up
_ARM = """() => {
  const old = window.__scrapemasterChange;
  if (old) { old.stop(); }
  let done;
  const promise = new Promise((resolve) => { done = resolve; });
  const start = location.href;
  const observer = new MutationObserver(() => { stop(); done(true); });
  const timer = setInterval(() => { if (location.href !== start) { stop(); done(true); } }, 100);
  function stop() { observer.disconnect(); clearInterval(timer); }
  observer.observe(document,
    { subtree: true, childList: true, characterData: true, attributes: true });
  window.__scrapemasterChange = { promise, stop };
}"""
_NEXT_CHANGE = """(ms) => {
  const watch = window.__scrapemasterChange;
  if (!watch) { return true; }  // another document than the one armed: the tab navigated
  return Promise.race([watch.promise, new Promise((resolve) => setTimeout(() => {
    watch.stop(); resolve(false);
  }, ms))]);
}"""
_QUIET_DOM = """([quiet, cap]) => new Promise((resolve) => {
  let timer = null;
  const end = setTimeout(() => finish(false), cap);
  const observer = new MutationObserver(() => {
    clearTimeout(timer);
    timer = setTimeout(() => finish(true), quiet);
  });
  function finish(calm) {
    observer.disconnect(); clearTimeout(timer); clearTimeout(end); resolve(calm);
  }
  observer.observe(document,
    { subtree: true, childList: true, characterData: true, attributes: true });
  timer = setTimeout(() => finish(true), quiet);
})"""


async def fingerprint(page: Page) -> str:
    """A hash of the page's DOM, to tell whether a click changed anything."""
    return str(await page.evaluate(_FINGERPRINT))


async def watch_change(page: Page) -> None:
    """Arm the page's change watch (before a click): `next_change` resolves on the DOM's or
    the URL's first change after this."""
    await page.evaluate(_ARM)


async def next_change(page: Page, seconds: float) -> bool:
    """Whether the page changed since `watch_change` (waiting up to `seconds` for it); True
    too when the tab is on another document. Raises Playwright's Error when the document is
    being replaced meanwhile (a navigation: a change too)."""
    waiting = page.evaluate(_NEXT_CHANGE, max(1, int(seconds * 1000)))
    try:  # bounded here too: a page's own scripts may have broken its timers
        return bool(await asyncio.wait_for(waiting, seconds + OVERRUN))
    except TimeoutError:
        return False


async def settle_dom(page: Page, network: _Network, limit: float) -> None:
    """After a click changed the page: until no request is in flight and the DOM stayed the
    same for DOM_QUIET s with no request started meanwhile, or until the loop time `limit`."""
    from playwright.async_api import Error as PlaywrightError

    loop = asyncio.get_running_loop()
    while (left := limit - loop.time()) > 0:
        await network.settle(quiet=0.0, cap=left)
        started = network.started
        left = limit - loop.time()
        if left <= 0:
            return
        try:
            calm = await asyncio.wait_for(
                page.evaluate(_QUIET_DOM, [int(DOM_QUIET * 1000), int(left * 1000)]),
                left + OVERRUN,
            )
        except TimeoutError:  # the page's timers did not end it: `limit` is past
            return
        except PlaywrightError:  # the document was replaced meanwhile: wait for the new one
            with contextlib.suppress(PlaywrightError):
                await page.wait_for_load_state("load", timeout=max(1.0, left) * 1000)
            continue
        if calm and network.started == started and not network.pending:
            return


class _Network:
    """Requests in flight in one tab, to wait until a page's own scripts stop fetching."""

    def __init__(self, page: Page) -> None:
        self.pending: set[Request] = set()
        self.started = 0  # requests the tab has made
        self.changed = asyncio.Event()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request: Request) -> None:
        self.started += 1
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
