"""A job's login in the browser: fill the form, submit, check; or check that a kept session is
still logged in. Returns the session (a storage state) for whichever engine crawls.

It runs in a context of the warm Chromium, through the egress proxy like every page (the
target policy judges the login page, its submit and its redirects). Field values are never
logged or put in a message: errors name the selector only.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapers.engine import Sink
from scrapers.rendering import describe_error, wait_selector
from shared.jobspec import JobSpec
from shared.sessions import BrowserSession, LoginConfig
from shared.targets import BLOCKED_TARGET

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page

    from scrapers.playwright_engine import PlaywrightEngine

LOGIN_FAILED = "login_failed"
LOGIN_SECONDS = 60.0  # the whole login (or session check), within the job's own timeout
FIELD_SECONDS = 10.0  # a field, the submit control: present within this
SUBMIT_NAVIGATION_SECONDS = 5.0  # a submit that navigates does so within this
SETTLE_SECONDS = 2.0  # after a navigation, the success check may wait this long
CHECK_SECONDS = 10.0  # after a submit that does not navigate (a script logs in)


@dataclass
class LoginOutcome:
    """`session` logged in (`reused`: a kept one that still is), or `error` {type, message}."""

    session: BrowserSession | None = None
    reused: bool = False
    error: dict[str, str] | None = None


class LoginFailed(Exception):
    """The login did not succeed; the message says why, naming no value."""


def browser_login(
    engine: PlaywrightEngine, spec: JobSpec, sink: Sink, kept: BrowserSession | None, start: dict
) -> LoginOutcome:
    """Log in for `spec` (blocks the calling thread): first try `kept` (a schedule's earlier
    session), then the form; `start`: the session the job brings itself (config.cookies)."""
    from scrapers.browser_pool import get_pool

    login = spec.config["login"]
    assert login is not None
    seconds = min(LOGIN_SECONDS, float(spec.config["timeout_seconds"]))
    pool = get_pool(engine.settings)
    future = pool.submit(_login(engine, spec, sink, login, kept, start, seconds))
    try:
        return future.result(timeout=seconds + 30)
    except TimeoutError:
        future.cancel()
        return LoginOutcome(error=_failed(login, f"no answer within {seconds:.0f} s"))


def _failed(login: LoginConfig, why: str) -> dict[str, str]:
    return {"type": LOGIN_FAILED, "message": f"login at {login['url']} failed: {why}"}


async def _login(
    engine: PlaywrightEngine,
    spec: JobSpec,
    sink: Sink,
    login: LoginConfig,
    kept: BrowserSession | None,
    start: dict,
    seconds: float,
) -> LoginOutcome:
    from playwright.async_api import Error as PlaywrightError

    from scrapers.browser_pool import get_pool

    pool = get_pool(engine.settings)
    try:
        async with pool.lease() as lease:
            if kept is not None:
                context = await _context(engine, lease.browser, spec, sink, kept)
                try:
                    still = await asyncio.wait_for(_still_logged_in(context, login), seconds)
                finally:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(context.close(), 10)
                if still:
                    sink.log(
                        "INFO", f"login: the kept session is still logged in at {login['url']}"
                    )
                    return LoginOutcome(session=kept, reused=True)
                sink.log("INFO", "login: the kept session is logged out; logging in again")
            context = await _context(engine, lease.browser, spec, sink, start)
            try:
                await asyncio.wait_for(_submit_form(context, login), seconds)
                session = await context.storage_state()
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(context.close(), 10)
    except LoginFailed as exc:
        refused = _refused(engine, sink)
        if refused:  # the policy kept the login from a target: say which, as a crawl would
            why = f"{exc}; blocked target {', '.join(refused)}"
            return LoginOutcome(error={**_failed(login, why), "type": BLOCKED_TARGET})
        return LoginOutcome(error=_failed(login, str(exc)))
    except TimeoutError:
        return LoginOutcome(error=_failed(login, f"not done within {seconds:.0f} s"))
    except PlaywrightError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return LoginOutcome(error={"type": "browser_error", "message": f"login: {first[:300]}"})
    _refused(engine, sink)
    sink.log("INFO", f"login: logged in at {login['url']}")
    return LoginOutcome(session=dict(session))


def _refused(engine: PlaywrightEngine, sink: Sink) -> list[str]:
    """The targets the egress proxy refused during the login (each logged), as host:port."""
    from scrapers.browser_pool import get_pool

    egress = get_pool(engine.settings).egress
    found = egress.take_blocked() if egress is not None else {}
    for target, reason in found.items():
        sink.log("WARNING", f"login: blocked target {target}: {reason}; not fetched")
    return list(found)


async def _context(
    engine: PlaywrightEngine, browser: Any, spec: JobSpec, sink: Sink, session: dict | None
) -> BrowserContext:
    """A context like the crawl's: the egress proxy (target policy), the job's headers."""
    from scrapers.browser_pool import get_pool
    from scrapers.playwright_engine import _web_only

    egress = get_pool(engine.settings).egress
    assert egress is not None  # started with the browser
    options = engine._context_options(spec)
    options["proxy"] = {"server": egress.url, "bypass": "<-loopback>"}
    if session:
        options["storage_state"] = session
    context = await browser.new_context(**options)
    await context.route("**/*", _web_only(sink))
    return context


async def _open(page: Page, url: str) -> None:
    try:
        response = await page.goto(url, wait_until="load", timeout=30_000)
    except Exception as exc:  # Playwright's navigation errors: the page is unreachable
        problem, _raw = describe_error(exc, url)
        raise LoginFailed(f"the login page did not load ({problem['message']})") from None
    if response is not None and response.status >= 400:
        raise LoginFailed(f"the login page answered HTTP {response.status}")


async def _present(page: Page, selector: str, seconds: float) -> bool:
    """Whether `selector` is (or comes to be, within `seconds`) on the page."""
    try:
        await page.wait_for_selector(
            wait_selector(selector), state="attached", timeout=seconds * 1000
        )
        return True
    except Exception:  # a timeout, or a navigation replaced the document: look once more
        with contextlib.suppress(Exception):
            return await page.query_selector(wait_selector(selector)) is not None
        return False


async def _still_logged_in(context: BrowserContext, login: LoginConfig) -> bool:
    """A kept session's check: the login page shows `success_selector`, or (without one) no
    longer shows the form's first field."""
    page = await context.new_page()
    try:
        await _open(page, login["url"])
    except LoginFailed:
        return False
    if login.get("success_selector"):
        return await _present(page, str(login["success_selector"]), SETTLE_SECONDS)
    first = next(iter(login["fields"]))
    return not await _present(page, first, 0.5)


async def _submit_form(context: BrowserContext, login: LoginConfig) -> None:
    """Fill the fields in order, submit, and check; LoginFailed says why."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    page = await context.new_page()
    await _open(page, login["url"])
    selectors = list(login["fields"])
    for selector in selectors:
        try:
            await page.fill(
                wait_selector(selector), login["fields"][selector], timeout=FIELD_SECONDS * 1000
            )
        except PlaywrightTimeout:
            raise LoginFailed(
                f"no field {selector!r} to fill on the login page within {FIELD_SECONDS:.0f} s"
            ) from None
        except Exception:  # not an input (Playwright says why, with the value: not shown)
            raise LoginFailed(f"the element {selector!r} cannot be filled") from None
    submit = login.get("submit")
    navigated = True
    try:
        async with page.expect_navigation(
            wait_until="load", timeout=SUBMIT_NAVIGATION_SECONDS * 1000
        ):
            if submit:
                await page.click(wait_selector(submit), timeout=FIELD_SECONDS * 1000)
            else:
                await page.press(wait_selector(selectors[-1]), "Enter")
    except PlaywrightTimeout:
        navigated = False  # a script logs in without a navigation, or the click found nothing
        if submit and not await _present(page, submit, 0):
            raise LoginFailed(f"no submit control {submit!r} on the login page") from None
    except PlaywrightError as exc:  # the submit's navigation failed (refused, blocked, reset)
        problem, _raw = describe_error(exc, page.url)
        raise LoginFailed(f"submitting the form failed ({problem['message']})") from None
    wait = SETTLE_SECONDS if navigated else CHECK_SECONDS
    success = login.get("success_selector")
    if success:
        if not await _present(page, str(success), wait):
            raise LoginFailed(
                f"{success!r} is absent after submitting (wrong credentials, or a different "
                "page than expected)"
            )
        return
    if await _gone(page, selectors[0], wait):
        return
    raise LoginFailed(
        f"the form is still there after submitting ({selectors[0]!r} present; wrong "
        "credentials? set success_selector to say what a logged-in page shows)"
    )


async def _gone(page: Page, selector: str, seconds: float) -> bool:
    try:
        await page.wait_for_selector(
            wait_selector(selector), state="detached", timeout=seconds * 1000
        )
        return True
    except Exception:
        with contextlib.suppress(Exception):
            return await page.query_selector(wait_selector(selector)) is None
        return False
