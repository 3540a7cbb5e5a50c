"""One warm Chromium per worker process, driven by async Playwright on a long-lived loop thread.

Playwright's objects belong to the event loop that created them, so the process keeps one loop
on a daemon thread (started lazily, re-created after fork, like scrapers/reactor.py) and every
job runs its coroutine there. The browser is shared across jobs (each job opens its own context),
relaunched when it crashed and recycled after `browser_recycle_pages` pages, between jobs only.

No Chromium may outlive its worker. Chromium already exits when its CDP pipe closes (the
Playwright driver dies with us), but a hung browser would not, and Debian's build starts crash
handlers outside the browser's process group. So every browser is launched with a marker in its
environment (the crash handlers inherit it; the other helpers share the browser's group), and
each worker runs a tiny watchdog in its own session that SIGKILLs those processes and groups as
soon as its stdin, a pipe only the worker holds, reaches EOF: when the worker exits or dies.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import threading
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.settings import Settings

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

    from scrapers.egress import EgressProxy

logger = logging.getLogger(__name__)
LAUNCH_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


NO_SANDBOX = "--no-sandbox"


def sandbox_wanted(setting: str, uid: int | None = None) -> bool:
    """CHROMIUM_SANDBOX: on, off, or auto (on unless running as root, where Chromium refuses
    its sandbox; containers often lack the user namespaces it needs, hence the fallback)."""
    mode = (setting or "auto").strip().lower()
    if mode in ("on", "true", "1", "yes"):
        return True
    if mode in ("off", "false", "0", "no"):
        return False
    return (os.geteuid() if uid is None else uid) != 0


def egress_args(proxy_url: str) -> list[str]:
    """Chromium flags that send every connection through the egress proxy (scrapers/egress.py)
    and turn off the ways around it."""
    return [
        f"--proxy-server={proxy_url}",
        "--proxy-bypass-list=<-loopback>",  # else Chromium goes direct to localhost
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--disable-quic",
        "--dns-prefetch-disable",
    ]


MARKER = "SCRAPEMASTER_BROWSER"  # env entry MARKER=<worker pid>-<random>/<launch number>/
LAUNCH_TIMEOUT_MS = 30_000
CLOSE_TIMEOUT = 10.0

# Blocks until EOF on stdin, then SIGKILLs every process marked with $1 and its process group,
# never the worker's own group $2. Chromium's helpers overwrite their environ with their title
# but stay in the browser's group; a second round catches anything forked meanwhile.
_WATCHDOG = """
marker=$1 spare=$2
cat >/dev/null
for round in 1 2; do
  for f in $(grep -lzs "^$marker" /proc/[0-9]*/environ); do
    p=${f#/proc/}; p=${p%/environ}
    if read -r stat < "/proc/$p/stat"; then
      set -- ${stat##*) }
      [ "${3:-0}" -gt 1 ] && [ "$3" != "$spare" ] && kill -s KILL -- "-$3" 2>/dev/null
    fi
    kill -s KILL "$p" 2>/dev/null
  done
  sleep 0.2
done
"""


class BrowserCrashed(RuntimeError):
    """The browser died or disconnected while a job was using it."""


@dataclass
class Lease:
    """A job's use of the browser; `pages` rendered are counted towards recycling."""

    browser: Browser
    pages: int = 0


def browser_processes(marker: str) -> list[int]:
    """Live (non-zombie) pids whose environment has an entry starting with `marker`, and the
    members of their process groups (Chromium's zygotes and renderers overwrite their environ
    with their process title, but stay in the browser's group)."""
    stats: dict[int, tuple[str, int]] = {}
    marked: set[int] = set()
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rfind(")") + 2 :].split()
            stats[int(entry.name)] = (fields[0], int(fields[2]))
            if any(v.startswith(needle) for v in (entry / "environ").read_bytes().split(b"\0")):
                marked.add(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    groups = {stats[pid][1] for pid in marked}
    return sorted(
        pid
        for pid, (state, pgid) in stats.items()
        if state != "Z" and (pid in marked or pgid in groups)
    )


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class BrowserPool:
    """The process's Chromium: `submit` coroutines to its loop, `lease` the browser inside them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pid = os.getpid()
        self.launches = 0
        self.pages_since_launch = 0
        self.token = f"{MARKER}={self.pid}-{secrets.token_hex(4)}/"  # our processes' env entry
        self._browser: Browser | None = None
        self._playwright: Playwright | None = None
        self._active = 0
        self._closed = False
        self._watchdog: subprocess.Popen | None = None
        self.egress: EgressProxy | None = None  # the policy proxy every page goes through
        self.sandbox: bool | None = None  # whether Chromium runs in its sandbox (after launch)
        self._loop = asyncio.new_event_loop()
        self._launch_lock = asyncio.Lock()  # bound to self._loop on first use (3.10+)
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="browser-pool", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ from any thread

    def submit(self, coro: Coroutine[Any, Any, Any]) -> Future:
        """Schedule `coro` on the pool's loop; the Future resolves with its result."""
        if self._closed:
            coro.close()
            raise RuntimeError("the browser pool is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def pids(self) -> list[int]:
        """Pids of every live Chromium process this pool launched (all launches)."""
        return browser_processes(self.token)

    def close(self) -> None:
        """Close the browser, stop Playwright and the loop; no Chromium survives this call."""
        if self._closed:
            return
        self._closed = True
        if self.pid == os.getpid() and self._thread.is_alive():
            with contextlib.suppress(Exception):
                future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
                future.result(CLOSE_TIMEOUT + 5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self._loop.close()
        self._stop_watchdog()

    # ------------------------------------------------------------------ on the loop

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[Lease]:
        """A live browser for one job; relaunched first if it crashed or is due for recycling."""
        async with self._launch_lock:
            due = self.pages_since_launch >= self.settings.browser_recycle_pages
            if self._browser is not None and ((due and self._active == 0) or not self.connected):
                await self._close_browser()
            if self._browser is None:
                await self._launch()
            self._active += 1
            browser = self._browser
        assert browser is not None  # launched above (a failed launch raised)
        lease = Lease(browser)
        try:
            yield lease
        finally:
            self._active -= 1
            self.pages_since_launch += lease.pages

    @property
    def connected(self) -> bool:
        """True while the browser is up and its connection alive."""
        return self._browser is not None and self._browser.is_connected()

    async def _launch(self) -> None:
        if self._playwright is None:
            from playwright.async_api import async_playwright

            self._playwright = await async_playwright().start()
        self._start_watchdog()  # before the launch: a death mid-launch must be covered too
        if self.egress is None:
            from scrapers.egress import EgressProxy
            from shared.targets import TargetPolicy

            egress = EgressProxy(TargetPolicy.from_settings(self.settings))
            await egress.start()
            self.egress = egress
        self.launches += 1
        name, value = f"{self.token}{self.launches}/".split("=", 1)
        args = [*LAUNCH_ARGS, *egress_args(self.egress.url)]
        sandboxed = self.sandbox is not False and sandbox_wanted(self.settings.chromium_sandbox)
        try:
            browser = await self._playwright.chromium.launch(
                executable_path=self.settings.chromium_path,
                headless=True,
                args=args if sandboxed else [NO_SANDBOX, *args],
                env={**os.environ, name: value},
                timeout=LAUNCH_TIMEOUT_MS,
            )
        except Exception as exc:
            if sandboxed and "sandbox" in str(exc).lower():
                logger.warning(
                    "Chromium cannot use its sandbox here (%s); running it without "
                    "(set CHROMIUM_SANDBOX=off to skip this attempt)",
                    str(exc).strip().splitlines()[0][:200],
                )
                self.sandbox = False
                await self._stop_playwright()
                await self._launch()
                return
            # The driver itself may be gone: start a fresh one on the next attempt.
            await self._stop_playwright()
            raise
        self.sandbox = sandboxed
        self._browser = browser
        self.pages_since_launch = 0

    async def _close_browser(self) -> None:
        browser, self._browser = self._browser, None
        if browser is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser.close(), CLOSE_TIMEOUT)
        # A crashed or hung browser may leave renderers and crash handlers behind.
        _kill(browser_processes(f"{self.token}{self.launches}/"))

    async def _stop_playwright(self) -> None:
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(playwright.stop(), CLOSE_TIMEOUT)

    async def _shutdown(self) -> None:
        await self._close_browser()
        await self._stop_playwright()
        if self.egress is not None:
            await self.egress.close()

    # ------------------------------------------------------------------ watchdog

    def _start_watchdog(self) -> None:
        if not self.token.startswith(f"{MARKER}="):  # the watchdog kills whatever matches it
            raise RuntimeError(f"bad browser marker {self.token!r}")
        if self._watchdog is None or self._watchdog.poll() is not None:
            # Own session: a signal to the worker's process group must not take it down too.
            self._watchdog = subprocess.Popen(
                ["/bin/sh", "-c", _WATCHDOG, "watchdog", self.token, str(os.getpgrp())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _stop_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog.stdin is not None:
            with contextlib.suppress(OSError):
                watchdog.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                watchdog.wait(5)

    def _forget_after_fork(self) -> None:
        # A forked child must not hold the parent's watchdog pipe open (the watchdog would miss
        # the parent's death); the loop thread and browser do not exist in the child at all.
        self._closed = True
        if self._watchdog is not None and self._watchdog.stdin is not None:
            with contextlib.suppress(OSError):
                self._watchdog.stdin.close()  # the child's copy only; the parent keeps its own
        self._watchdog = None


_lock = threading.Lock()
_state: dict[str, Any] = {"pool": None}


def get_pool(settings: Settings) -> BrowserPool:
    """This process's pool, created on first use (and again after fork or close)."""
    with _lock:
        pool: BrowserPool | None = _state["pool"]
        if pool is None or pool.pid != os.getpid() or pool._closed:
            pool = _state["pool"] = BrowserPool(settings)
        return pool


def close_pool() -> None:
    """Close this process's pool, if any (worker shutdown, atexit)."""
    with _lock:
        pool, _state["pool"] = _state["pool"], None
    if pool is not None and pool.pid == os.getpid():
        pool.close()


def _after_fork_in_child() -> None:
    pool = _state["pool"]
    if pool is not None:
        pool._forget_after_fork()
    _state["pool"] = None


atexit.register(close_pool)
os.register_at_fork(after_in_child=_after_fork_in_child)
