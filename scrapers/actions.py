"""The action runner: a job's `config.actions` carried out in order on one page, each step
within its own timeout and the job's remaining time. A step that fails raises ActionFailed
with the sentence the job shows: `step 3 (click button.accept): no element after 10 s`.

The steps act as a person would in the tab: whatever they make the page load goes through
the context's routing and the egress guard like the page's own requests, and an `evaluate`
script runs in the page with no more reach than the page's own scripts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapers.rendering import _scroll, wait_selector
from shared.actions import actions_problems, describe

if TYPE_CHECKING:
    from playwright.async_api import Page

    from scrapers.rendering import _Network

# a screenshot step: takes and stores the page's image as a file of the job (full_page or not)
Capture = Callable[[bool], Awaitable[None]]
# (level, message) for the job log
Log = Callable[[str, str], None]


class ActionFailed(Exception):
    """A step failed; str() is the job's error message."""

    def __init__(self, number: int, step: Mapping[str, Any], why: str) -> None:
        super().__init__(f"step {number} ({describe(step)}): {why}")


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value < 10 else f"{round(value)} s"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:300]


@dataclass
class Budget:
    """The time steps may take: `default` seconds a step (ACTION_TIMEOUT_SECONDS) unless it
    sets `timeout_seconds`, never past `deadline` (the job's, in the loop's time)."""

    deadline: float
    default: float

    def left(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()

    def for_step(self, step: Mapping[str, Any]) -> float:
        if step.get("type") == "wait" and "milliseconds" in step:
            own = int(step["milliseconds"]) / 1000 + 1.0
        else:
            own = float(step.get("timeout_seconds") or self.default)
        return min(own, self.left())


@dataclass
class ActionRunner:
    """Runs steps on `page`; `capture` stores a screenshot step's image, `log` writes to the
    job log; `network` watches the tab's requests (to let what a step loads arrive)."""

    page: Page
    network: _Network
    budget: Budget
    capture: Capture
    log: Log

    async def run(self, steps: Sequence[Mapping[str, Any]]) -> None:
        """Carry out `steps` in order; ActionFailed at the first that fails."""
        invalid = actions_problems(steps)  # a job stored another way than through the API
        if invalid:
            index = min(invalid)
            raise ActionFailed(max(index, 0) + 1, steps[max(index, 0)] if steps else {}, "invalid")
        for number, step in enumerate(steps, 1):
            seconds = self.budget.for_step(step)
            if seconds <= 0:
                raise ActionFailed(number, step, "the job's time ran out before this step")
            try:
                # Playwright's own timeouts say what was missing; this bound is the backstop
                # for what has none (a script, a wait on a page that never settles)
                await asyncio.wait_for(self._step(number, step, seconds), seconds + 2)
            except TimeoutError:
                why = f"did not finish after {_seconds(seconds)}"
                raise ActionFailed(number, step, why) from None
            self.log("INFO", f"step {number} ({describe(step)}) done")

    async def _step(self, number: int, step: Mapping[str, Any], seconds: float) -> None:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        kind = step["type"]
        try:
            await getattr(self, f"_{kind}")(step, seconds)
        except PlaywrightTimeout:
            raise ActionFailed(number, step, await self._missing(step, seconds)) from None
        except ActionFailed:
            raise
        except PlaywrightError as exc:
            what = "the script failed" if kind == "evaluate" else "failed"
            raise ActionFailed(number, step, f"{what}: {_first_line(exc)}") from None
        except _ScriptTimeout:
            raise ActionFailed(
                number, step, f"the script did not finish after {_seconds(seconds)}"
            ) from None

    async def _missing(self, step: Mapping[str, Any], seconds: float) -> str:
        """Why a step with a selector timed out: no element, or one that never became ready."""
        selector = step.get("selector")
        if selector is None:
            return f"timed out after {_seconds(seconds)}"
        try:
            count = await self.page.locator(wait_selector(selector)).count()
        except Exception:
            count = 0
        if count == 0:
            return f"no element after {_seconds(seconds)}"
        if step["type"] == "select":
            return f"no option {step['value']!r} (or not selectable) after {_seconds(seconds)}"
        return f"the element was not visible and enabled after {_seconds(seconds)}"

    def _locator(self, step: Mapping[str, Any]) -> Any:
        return self.page.locator(wait_selector(step["selector"])).first

    async def _after_input(self, seconds: float) -> None:
        """What a click or a key starts (a fetch, a navigation) gets to begin and land."""
        await self.network.settle(cap=min(seconds, 3.0))

    # ------------------------------------------------------------------ the steps

    async def _click(self, step: Mapping[str, Any], seconds: float) -> None:
        await self._locator(step).click(timeout=seconds * 1000)
        await self._after_input(seconds)

    async def _fill(self, step: Mapping[str, Any], seconds: float) -> None:
        await self._locator(step).fill(step["value"], timeout=seconds * 1000)

    async def _press(self, step: Mapping[str, Any], seconds: float) -> None:
        if step.get("selector"):
            await self._locator(step).press(step["key"], timeout=seconds * 1000)
        else:
            await self.page.keyboard.press(step["key"])
        await self._after_input(seconds)

    async def _select(self, step: Mapping[str, Any], seconds: float) -> None:
        await self._locator(step).select_option(step["value"], timeout=seconds * 1000)
        await self._after_input(seconds)

    async def _wait(self, step: Mapping[str, Any], seconds: float) -> None:
        if "milliseconds" in step:
            wanted = int(step["milliseconds"]) / 1000
            if wanted > self.budget.left():
                raise TimeoutError
            await asyncio.sleep(wanted)
            return
        await self.page.wait_for_selector(
            wait_selector(step["selector"]), state="attached", timeout=seconds * 1000
        )

    async def _scroll(self, step: Mapping[str, Any], seconds: float) -> None:
        times = int(step.get("times", 1))
        loop = asyncio.get_running_loop()
        grown = await _scroll(self.page, times, self.network, loop.time() + self.budget.left())
        if grown < times:
            self.log("INFO", f"scroll: the page stopped growing after {grown} of {times} scrolls")

    async def _screenshot(self, step: Mapping[str, Any], seconds: float) -> None:
        await self.capture(bool(step.get("full_page")))

    async def _evaluate(self, step: Mapping[str, Any], seconds: float) -> None:
        # the page's own world: no more than its scripts may do. The result is dropped (a
        # promise is awaited first); a script that never returns holds the tab, which the
        # visit then closes.
        try:
            await asyncio.wait_for(self.page.evaluate(step["script"]), seconds)
        except TimeoutError:
            raise _ScriptTimeout from None


class _ScriptTimeout(Exception):
    pass
