"""What the benchmarks share: the crawl shape, the extraction spec, the chaos suite's parts.

Crawl shape (identical on both sides): the catalog is cut into up to 100 "chains" of
consecutive pages. The start URLs are the first page of each chain (`/catalog/` for page 1,
`/catalog/page/K` for the others) and every page follows its `li.next a` link, so the crawl
visits every page exactly once while ~100 pages are discoverable at any moment: concurrency
matters, unlike a single next-link chain. 100 is the service's default MAX_URLS_PER_JOB.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import requests

MAX_START_URLS = 100
ITEM_SELECTOR = "div.product"
LINK_SELECTOR = "li.next a::attr(href)"
SELECTORS = {
    "sku": "./@data-sku",
    "title": "h2.product-title::text",
    "price": "span.price::text",
    "stock": "p.stock::text",
    "tags": "ul.tags li::text",
}
USER_AGENT = "ScrapeMaster/0.1 (+https://github.com/scrapemaster)"  # the service's default


def start_urls(site: str, pages: int, chains: int = MAX_START_URLS) -> list[str]:
    """The first page of each chain of consecutive catalog pages."""
    chains = max(1, min(chains, pages))
    stride = math.ceil(pages / chains)
    firsts = range(1, pages + 1, stride)
    return [f"{site}/catalog/" if p == 1 else f"{site}/catalog/page/{p}" for p in firsts]


def service_job(site: str, pages: int, concurrency: int) -> dict:
    """The POST /jobs body of the whole-site crawl."""
    return {
        "urls": start_urls(site, pages),
        "engine": "scrapy",
        "selectors": SELECTORS,
        "config": {
            "item_selector": ITEM_SELECTOR,
            "follow_links": True,
            "link_selector": LINK_SELECTOR,
            "max_pages": pages,
            "concurrency": concurrency,
            "obey_robots": True,
            "timeout_seconds": 1800,
        },
    }


def one_page_job(site: str, page: int) -> dict:
    """The POST /jobs body of a one-page job (10 items, no link following)."""
    return {
        "url": f"{site}/catalog/page/{page}",
        "engine": "scrapy",
        "selectors": SELECTORS,
        "config": {"item_selector": ITEM_SELECTOR, "max_pages": 1},
    }


# -- the chaos suite's helpers: its own processes, API calls that count 5xx, a poison page ------


class ProcessTracker(threading.Thread):
    """Every process of one stack and only those: the ones whose environment names its VAR_DIR
    (every process a `make run` starts inherits it), their descendants and the members of their
    sessions (Chromium's zygotes and renderers overwrite their environment with their title).
    Each is remembered by (pid, start time), so one orphaned by a kill still counts, and a pid
    that the kernel hands to another program later does not."""

    def __init__(self, var: Path, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.marker = f"VAR_DIR={var}\0".encode()
        self.interval = interval
        self.stop = threading.Event()
        self._known: dict[int, float] = {}  # pid -> create_time
        self._unmarked: dict[int, float] = {}  # seen without the marker: not read again
        self._lock = threading.Lock()
        me = psutil.Process()
        self._never = {me.pid, *(p.pid for p in me.parents())}  # the harness and its callers
        self._foreign_sids = {0, 1, os.getsid(0)}  # a session the stack did not create

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.scan()

    def scan(self) -> None:
        procs: dict[int, tuple[int, float, int]] = {}
        for proc in psutil.process_iter(["ppid", "create_time", "status"]):
            info = proc.info
            if info["status"] == psutil.STATUS_ZOMBIE or proc.pid in self._never:
                continue
            with contextlib.suppress(OSError):
                procs[proc.pid] = (info["ppid"], info["create_time"], os.getsid(proc.pid))
        with self._lock:
            own = {
                pid
                for pid, (_, created, _) in procs.items()
                if self._known.get(pid) == created or self._marked(pid, created)
            }
            grown = True
            while grown:  # descendants and session members, to a fixed point
                sids = {procs[p][2] for p in own} - self._foreign_sids
                more = {
                    pid
                    for pid, (ppid, _, sid) in procs.items()
                    if pid not in own and (ppid in own or sid in sids)
                }
                own |= more
                grown = bool(more)
            for pid in own:
                self._known[pid] = procs[pid][1]

    def _marked(self, pid: int, created: float) -> bool:
        # an environment only loses the marker later (a title written over it), never gains it
        if self._unmarked.get(pid) == created:
            return False
        try:
            marked = self.marker in Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            marked = False
        if not marked:
            self._unmarked[pid] = created
        return marked

    def alive(self, needle: bytes = b"") -> list[int]:
        """The stack's processes still running (zombies aside) whose command line holds
        `needle`, after a fresh scan."""
        self.scan()
        with self._lock:
            known = dict(self._known)
        found = []
        for pid, created in known.items():
            try:
                proc = psutil.Process(pid)
                if proc.create_time() != created or proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                if needle and needle not in _cmdline(pid):
                    continue
            except psutil.Error:
                continue
            found.append(pid)
        return sorted(found)

    def owns(self, pid: int) -> bool:
        return pid in self.alive()

    def kill(self, pid: int, sig: int = signal.SIGKILL) -> bool:
        """Signal `pid` only if it is one of the stack's."""
        if not self.owns(pid):
            return False
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def parent_of(pid: int) -> int:
    try:
        return psutil.Process(pid).ppid()
    except psutil.Error:
        return 0


class Api:
    """REST calls to the service that outlast its outages (a 503 in the error shape, or no
    answer while `restarting` is set, is retried) and count what must never happen: an answer
    ≥ 500 other than a 503 in the error shape, or a hang."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.restarting = threading.Event()  # the supervisor was killed: no answer is expected
        self.calls = self.bad = self.hangs = self.unavailable = 0
        self.samples: list[str] = []
        self._lock = threading.Lock()

    def call(
        self, method: str, path: str, token: str | None = None, patience: float = 90, **kwargs: Any
    ) -> requests.Response | None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        deadline = time.monotonic() + patience
        while True:
            answer = self.once(method, path, headers, **kwargs)
            if answer is not None and answer.status_code < 500:
                return answer
            if time.monotonic() > deadline:
                return answer
            time.sleep(0.5)

    def once(
        self, method: str, path: str, headers: dict[str, str], **kwargs: Any
    ) -> requests.Response | None:
        """One attempt, counted."""
        with self._lock:
            self.calls += 1
        try:
            answer = requests.request(
                method, f"{self.base}{path}", headers=headers, timeout=15, **kwargs
            )
        except requests.Timeout:
            with self._lock:
                self.hangs += 1
            return None
        except requests.RequestException as exc:
            if not self.restarting.is_set():
                self._bad(f"{method} {path}: no answer: {exc}")
            return None
        if answer.status_code == 503 and _is_error_shape(answer, "unavailable"):
            with self._lock:
                self.unavailable += 1
        elif answer.status_code >= 500:
            self._bad(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
        return answer

    def _bad(self, sample: str) -> None:
        with self._lock:
            self.bad += 1
            self.samples.append(sample[:300])


def _is_error_shape(answer: requests.Response, kind: str) -> bool:
    try:
        body = answer.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("type") == kind and bool(body.get("request_id"))


class PoisonSite:
    """A loopback page that kills whoever fetches it: the process holding the other end of the
    connection is SIGKILLed (only when the tracker says it is the stack's), up to `limit` times;
    after that it is an ordinary page with one item, so a service that retries a poison job
    forever still ends."""

    SKU = "POISON-1"

    def __init__(self, tracker: ProcessTracker, limit: int) -> None:
        self.tracker, self.limit = tracker, limit
        self.kills: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/robots.txt":
                    self.send_error(404)
                    return
                if len(outer.kills) < outer.limit and outer.strike(self.client_address[1]):
                    self.close_connection = True
                    return
                body = (
                    f'<html><body><div class="product" data-sku="{outer.SKU}">'
                    '<h2 class="product-title">Poison</h2></div></body></html>'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/poison"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def strike(self, client_port: int) -> bool:
        """SIGKILL the stack's process that opened this connection."""
        server_port = self.server.server_address[1]
        for pid in self.tracker.alive():
            try:
                conns = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.Error:
                continue
            for conn in conns:
                ours = conn.laddr and conn.laddr.port == client_port
                if (
                    ours
                    and conn.raddr
                    and conn.raddr.port == server_port
                    and self.tracker.kill(pid)
                ):
                    self.kills.append(time.monotonic())
                    return True
        return False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
