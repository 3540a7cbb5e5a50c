"""One long-lived Twisted reactor per process, on a daemon thread, so crawls never restart it.

Twisted cannot restart a stopped reactor (ReactorNotRestartable). A worker process therefore
starts the reactor once, on its own thread, and every crawl is scheduled onto it; a crawl then
costs a Crawler object, not a reactor. Start it after fork: each worker child gets its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

REACTOR_CLASS = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "reactor": None, "thread": None}


def _serve(ready: threading.Event, box: dict[str, Any]) -> None:
    from scrapy.utils.reactor import install_reactor

    install_reactor(REACTOR_CLASS)
    from twisted.internet import reactor  # type: ignore[no-redef]

    from scrapers import resolver
    from shared.settings import get_settings
    from shared.targets import TargetPolicy

    # every connection a crawl opens is judged by the target policy (scrapers/resolver.py)
    resolver.install(reactor, TargetPolicy.from_settings(get_settings()))
    box["reactor"] = reactor
    reactor.callWhenRunning(ready.set)
    reactor.run(installSignalHandlers=False)  # type: ignore[misc,call-arg]


def get_reactor() -> Any:
    """The running reactor of this process, started on first use."""
    with _lock:
        if _state["pid"] == os.getpid() and _state["reactor"] is not None:
            return _state["reactor"]
        ready = threading.Event()
        box: dict[str, Any] = {}
        thread = threading.Thread(target=_serve, args=(ready, box), name="reactor", daemon=True)
        thread.start()
        if not ready.wait(30):
            raise RuntimeError("the Twisted reactor did not start within 30 s")
        _state.update(pid=os.getpid(), reactor=box["reactor"], thread=thread)
        return box["reactor"]


def run_in_reactor(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
    """Call `fn` on the reactor thread; the Future resolves with its (Deferred's) result."""
    from twisted.internet.defer import Deferred, maybeDeferred

    reactor = get_reactor()
    future: Future = Future()

    def call() -> None:
        d: Deferred = maybeDeferred(fn, *args, **kwargs)
        d.addCallbacks(future.set_result, lambda f: future.set_exception(f.value))

    reactor.callFromThread(call)
    return future
