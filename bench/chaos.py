"""Chaos: the whole `make run` under faults, then an audit of everything it was told, by its API.

Starts deploy/local.py (the `make run` supervisor, every process of the Procfile: API, the
scrapy, playwright, maintenance and webhooks workers, beat, the scheduler and Flower) on its own
var dir, ports and Redis, serves the demo site, a poison page and a webhook receiver on
loopback, registers users (each with a webhook for the terminal events) and a schedule that
fires every minute, submits multi-page jobs of both engines, and while they run:
SIGKILLs worker processes (main processes and pool children) and Chromium, kills Redis (back
empty) and the MongoDB wire server (back on its data), keeps Redis down for a few seconds just
as a job reaches its last page (around its terminal transition), races cancels, retries,
resets and deletes with running jobs, SIGKILLs the supervisor (its reaper must leave no
process; then a new supervisor takes over) and SIGSTOPs a worker (the supervisor must replace
it). The poison job's worker is killed each time it fetches its page.

Only the stack's own processes are counted and killed: the ones whose environment names its
VAR_DIR, their descendants and session members (ProcessTracker below).

Afterwards everything is audited through the REST API only: every job (lost, stuck, status),
its items (`/results`: duplicated, missing, disagreeing with `items_scraped`), the counters
(`/jobs/stats`, `/monitoring/stats`), the terminal webhooks (received by event id, against
`/webhooks/{id}/deliveries`), the schedule's slots (`/schedules/history`: none doubled, none
unrecorded), the poison job (failed `worker_lost` after MAX_JOB_ATTEMPTS), and the processes
left once the supervisor stopped. A check whose feature this version lacks (MAX_JOB_ATTEMPTS,
LIVENESS_TIMEOUT_SECONDS) is reported "not available". Exit 1 if anything is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import requests

from bench import common
from bench.common import ROOT
from deploy import embedded
from shared.settings import Settings
from testing.receiver import Receiver
from testing.sites.server import SiteServer

TERMINAL = ("completed", "failed", "cancelled")
TERMINAL_EVENTS = ["job.completed", "job.failed", "job.cancelled"]
SELECTORS = {"sku": "./@data-sku", "title": "h2.product-title::text"}
CONFIG = {"item_selector": "div.product", "follow_links": True, "link_selector": "li.next a"}
WORKERS = (b"worker\0-Q\0scrapy", b"worker\0-Q\0playwright")
JOBS_PER_USER = 20  # a webhook's deliveries log shows its newest 100 attempts: stay well below
NOT_AVAILABLE = "not available"


def log(message: str) -> None:
    common.log(message, "chaos")


def feature(name: str) -> bool:
    """Whether this version's settings have `name` (a feature built on another branch)."""
    return name in {f.name for f in dataclasses.fields(Settings)}


def _die_with_parent() -> None:
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# -- its own processes, API calls that count 5xx, a poison page ---------------------------------


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
            if not self.restarting.is_set():  # the API is going away with its supervisor
                with self._lock:
                    self.hangs += 1
                    self.samples.append(f"{method} {path}: no answer in 15 s (hang)")
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


class Service:
    """`make run` (deploy/local.py, every Procfile process) in a var dir of its own."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.var = workdir / "var"
        self.api_port = embedded.free_port()
        self.redis_port = embedded.free_port()
        self.flower_port = embedded.free_port()
        self.flower_password = uuid.uuid4().hex
        self.env = dict(
            os.environ,
            ENV="local",
            VAR_DIR=str(self.var),
            API_PORT=str(self.api_port),
            FLOWER_PORT=str(self.flower_port),
            FLOWER_PASSWORD=self.flower_password,
            EMBEDDED_MONGO_PORT=str(embedded.free_port()),
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            RATE_LIMIT_ENABLED="false",
            LOG_LEVEL="WARNING",
            **env,
        )
        self.env.pop("MONGO_URL", None)
        self.log = workdir / "make-run.log"
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{self.api_port}/api/v1"

    def start(self) -> tuple[float, str]:
        """Start the supervisor; seconds until it says "ready" (or that it is not, after 120 s),
        and what it said."""
        started = time.monotonic()
        readies = self._readies()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "deploy" / "local.py")],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # the harness killed: its make run stops too
            )
        deadline = time.monotonic() + 180
        while self._readies() <= readies:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"make run did not start: {self._tail()}")
            time.sleep(0.3)
        said = self._text().splitlines()
        verdict = next(line for line in reversed(said) if "ready" in line and "| " in line)
        return time.monotonic() - started, verdict.split("| ", 1)[1].strip()

    def _readies(self) -> int:
        text = self._text()
        return text.count("| ready") + text.count("| not ready after")

    def _text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _tail(self) -> str:
        return self._text()[-3000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def flower_up(self) -> bool:
        try:
            answer = requests.get(
                f"http://127.0.0.1:{self.flower_port}/api/workers",
                auth=("admin", self.flower_password),
                timeout=10,
            )
        except requests.RequestException:
            return False
        return answer.status_code == 200


@dataclasses.dataclass
class User:
    name: str
    token: str
    hook_id: str = ""


@dataclasses.dataclass
class Job:
    id: str
    user: User
    expected: set[str]  # the SKUs a completed run must hold exactly
    kind: str = "catalog"  # catalog | poison | schedule


class Stack:
    """Everything one run starts, and the faults it injects into it."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        env = {
            "JOB_STALE_SECONDS": str(args.stale),
            "RECONCILE_AFTER_SECONDS": str(args.reconcile),
            "RESEND_AFTER_SECONDS": str(args.reconcile),
            "WEBHOOK_RETRY_BASE_SECONDS": "2",  # a delivery cut by a kill is tried again soon
            # a process killed between a job's write and its counter's leaves the counter one
            # off until beat's recount (docs/guide/jobs.md § Listing jobs): the audit waits for one
            "COUNTER_CHECK_SECONDS": str(args.counter_check),
        }
        if feature("max_job_attempts"):
            env["MAX_JOB_ATTEMPTS"] = str(args.max_attempts)
        if args.shutdown_grace is not None:
            env["WORKER_SHUTDOWN_GRACE_SECONDS"] = str(args.shutdown_grace)
        if feature("liveness_timeout_seconds"):
            env["LIVENESS_TIMEOUT_SECONDS"] = str(args.liveness)
        self.service = Service(workdir, env)
        self.api = Api(self.service.base)
        self.tracker = ProcessTracker(self.service.var)
        self.site = SiteServer(pages=args.pages, items_per_page=10, delay=args.page_delay)
        # MAX_JOB_ATTEMPTS take-overs, then the death that fails it: one kill more, and a
        # spare; a service without the cap completes it after that
        self.poison = PoisonSite(self.tracker, limit=args.max_attempts + 2)
        self.receiver = Receiver()
        self.users: list[User] = []
        self.jobs: dict[str, Job] = {}
        self.deleted: set[str] = set()
        self.expected_events: set[tuple[str, str]] = set()  # (job id, terminal event)
        self.figures: dict[str, Any] = {}
        self.faults: Counter[str] = Counter()
        self.finished: dict[str, float] = {}  # job id -> seconds after the last fault
        self.last_fault = time.monotonic()
        self.outage_lock = threading.Lock()

    # -- set-up --------------------------------------------------------------------------------

    def register(self, count: int) -> None:
        for _ in range(count):
            name = f"chaos{uuid.uuid4().hex[:8]}"
            body = {"username": name, "email": f"{name}@example.test", "password": "chaos-pass-1"}
            self.api.call("POST", "/auth/register", json=body)
            login = self.api.call(
                "POST", "/auth/login", json={"username": name, "password": "chaos-pass-1"}
            )
            assert login is not None and login.status_code == 200, login
            user = User(name, login.json()["access_token"])
            hook = self.api.call(
                "POST",
                "/webhooks",
                user.token,
                json={"webhook_url": self.receiver.url, "events": TERMINAL_EVENTS},
            )
            assert hook is not None and hook.status_code == 201, hook and hook.text
            user.hook_id = hook.json()["id"]
            self.users.append(user)

    def schedule(self) -> str | None:
        """A schedule firing every minute (a one-page job), owned by the first user."""
        body = {
            "name": "chaos every minute",
            "cron": "* * * * *",
            "timezone": "UTC",
            "job": {
                "url": self.site.url_for("/catalog/"),
                "engine": "scrapy",
                "selectors": SELECTORS,
                "config": {"item_selector": "div.product", "max_pages": 1},
            },
        }
        answer = self.api.call("POST", "/schedules", self.users[0].token, json=body)
        if answer is None or answer.status_code != 201:
            log(f"schedule refused: {answer and answer.text}")
            return None
        return str(answer.json()["id"])

    def submit(self, index: int) -> None:
        engine = "playwright" if index % 3 == 0 else "scrapy"
        path = "/js/catalog/" if engine == "playwright" else "/catalog/"
        body = {
            "url": self.site.url_for(path),
            "engine": engine,
            "selectors": SELECTORS,
            "config": {**CONFIG, "max_pages": self.args.pages},
        }
        user = self.users[index % len(self.users)]
        answer = self.api.call("POST", "/jobs", user.token, json=body)
        if answer is not None and answer.status_code == 201:
            expected = {f"SKU-{i:05d}" for i in range(1, self.args.pages * 10 + 1)}
            job_id = answer.json()["id"]
            self.jobs[job_id] = Job(job_id, user, expected)

    def submit_poison(self) -> str | None:
        body = {
            "url": self.poison.url,
            "engine": "scrapy",
            "selectors": SELECTORS,
            "config": {"item_selector": "div.product", "max_pages": 1},
        }
        user = self.users[0]
        answer = self.api.call("POST", "/jobs", user.token, json=body)
        if answer is None or answer.status_code != 201:
            return None
        job_id = answer.json()["id"]
        self.jobs[job_id] = Job(job_id, user, {PoisonSite.SKU}, kind="poison")
        return str(job_id)

    # -- faults --------------------------------------------------------------------------------

    def worker(self, main: bool, timeout: float = 60) -> int | None:
        """A worker main process (or one of its pool children) of a worker that is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = [p for n in WORKERS for p in self.tracker.alive(n)]
            children = [p for p in pids if parent_of(p) in pids]
            if children:
                mains = sorted({parent_of(p) for p in children})
                return self.rng.choice(mains if main else children)
            time.sleep(0.3)
        return None

    def kill_worker(self) -> None:
        # a third of the kills hit a worker's main process, the rest its pool children; either
        # way only a worker that is up (has its pool), as a real fault would
        main = self.rng.random() < 1 / 3
        target = self.worker(main)
        if target and self.tracker.kill(target):
            self.faults["worker_main_kills" if main else "pool_child_kills"] += 1

    def kill_chromium(self, timeout: float = 30) -> None:
        """SIGKILL a Chromium browser process (not a renderer): a browser engine crash."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            browsers = [
                p for p in self.tracker.alive(b"chromium") if b"--type=" not in _cmdline_of(p)
            ]
            if browsers:
                if self.tracker.kill(self.rng.choice(browsers)):
                    self.faults["chromium_kills"] += 1
                return
            time.sleep(0.3)

    def kill_redis(self, empty: bool = True) -> int:
        killed = 0
        for pid in self.tracker.alive(b"redis-server"):
            killed += self.tracker.kill(pid)
        if empty:
            with contextlib.suppress(FileNotFoundError):
                (self.service.var / "redis" / "dump.rdb").unlink()  # back empty, as a new Redis
        return killed

    def kill_store(self) -> None:
        for pid in self.tracker.alive(b"secantus"):
            self.tracker.kill(pid)
        self.faults["store_kills"] += 1

    def race(self) -> None:
        candidates = sorted(
            j.id for j in self.jobs.values() if j.kind == "catalog" and j.id not in self.deleted
        )
        job = self.jobs[self.rng.choice(candidates)]
        action = self.rng.choice(["cancel", "retry", "delete", "reset"])
        token = job.user.token
        if action == "delete":
            answer = self.api.call("DELETE", f"/jobs/{job.id}", token)
            # 404: an attempt that the outage cut off (answered 503 or not at all) had deleted
            # it, and the retry found it gone
            if answer is not None and answer.status_code in (204, 404):
                self.deleted.add(job.id)
        elif action == "cancel":
            answer = self.api.call("POST", f"/jobs/{job.id}/cancel", token)
            if answer is not None and answer.status_code == 200:
                self.expected_events.add((job.id, "job.cancelled"))
        else:
            before = self.api.call("GET", f"/jobs/{job.id}", token)
            status = before.json().get("status") if before is not None and before.ok else None
            answer = self.api.call("POST", f"/jobs/{job.id}/{action}", token)
            if answer is not None and answer.status_code == 200 and status in TERMINAL:
                # the run it ended was terminal: its terminal webhook is owed
                self.expected_events.add((job.id, f"job.{status}"))
        self.faults["races"] += 1

    def kill_supervisor(self) -> None:
        """SIGKILL the supervisor: its reaper must stop every process it started; then a new
        supervisor takes over on the same var dir, ports and data."""
        assert self.service.proc is not None
        self.api.restarting.set()
        try:
            os.kill(self.service.proc.pid, signal.SIGKILL)
            self.service.proc.wait()
            started = time.monotonic()
            grace = self.args.reap_grace
            last: set[str] = set()
            while (alive := self.tracker.alive()) and time.monotonic() - started < grace:
                last = {_cmdline_of(p)[:60].decode(errors="replace").strip() for p in alive}
                time.sleep(0.2)
            left = self.tracker.alive()
            outcome: dict[str, Any] = {
                "left": len(left),
                "reaped_in_s": round(time.monotonic() - started, 1),
            }
            # what held the reaper longest: a process slow to stop on SIGTERM
            outcome["last_to_go"] = sorted(last)[:3]
            if left:
                outcome["left_commands"] = [
                    _cmdline_of(p)[:80].decode(errors="replace") for p in left
                ]
                for pid in left:  # the next supervisor must not meet them
                    self.tracker.kill(pid)
            seconds, said = self.service.start()
            outcome["new_supervisor_ready_s"] = round(seconds, 1)
            if said != "ready":
                outcome["new_supervisor_said"] = said
            self.figures.setdefault("supervisor_kills", []).append(outcome)
            log(f"supervisor killed: {outcome}")
        finally:
            self.api.restarting.clear()

    def sigstop_worker(self) -> None:
        """SIGSTOP a scrapy worker's main process: a hang, not a death. The supervisor must
        notice (its liveness check) and replace it."""
        deadline = time.monotonic() + 90
        target = None
        while target is None and time.monotonic() < deadline:
            target = self._established_scrapy_worker()
            if target is None:
                time.sleep(0.3)
        if target is None or not self.tracker.kill(target, signal.SIGSTOP):
            return
        stopped = time.monotonic()
        available = feature("liveness_timeout_seconds")
        patience = self.args.liveness + 60 if available else self.args.sigstop_seconds
        replaced_in = None
        while time.monotonic() - stopped < patience:
            if target not in self.tracker.alive():
                pids = self.tracker.alive(WORKERS[0])
                children = [p for p in pids if parent_of(p) in pids]
                if children:  # a new scrapy worker with its pool
                    replaced_in = round(time.monotonic() - stopped, 1)
                    break
            time.sleep(0.3)
        if replaced_in is None:
            self.tracker.kill(target, signal.SIGCONT)  # the harness ends the hang itself
        self.figures.setdefault("sigstops", []).append(replaced_in if available else NOT_AVAILABLE)
        log(f"SIGSTOP of {target}: replaced in {replaced_in} s (liveness built: {available})")

    def _established_scrapy_worker(self) -> int | None:
        """The main process of a scrapy worker that is up (has its pool) and, with liveness
        built, has touched its liveness file (var/liveness/worker-scrapy) since it started: one
        still starting is given a longer allowance before it counts as hung."""
        pids = self.tracker.alive(WORKERS[0])
        # started by the supervisor itself, not a pool child orphaned by a kill
        mains = [p for p in pids if b"deploy/local.py" in _cmdline_of(parent_of(p))]
        mains = [p for p in mains if any(parent_of(c) == p for c in pids)]
        beat = self.service.var / "liveness" / "worker-scrapy"
        for pid in mains:
            if not feature("liveness_timeout_seconds"):
                return pid
            try:
                if beat.stat().st_mtime > psutil.Process(pid).create_time() + 1:
                    return pid
            except (OSError, psutil.Error):
                continue
        return None

    def outages(self, stop: threading.Event) -> None:
        """Keep Redis down for `outage_seconds` each time a scrapy job fetches the last catalog
        page: its terminal transition (event and webhook) happens in the outage."""
        trigger = f"/catalog/page/{self.args.pages}"
        seen = 0
        while not stop.is_set() and self.faults["redis_outages"] < self.args.redis_outages:
            requests_ = self.site.requests
            fresh, seen = requests_[seen:], len(requests_)
            if trigger in fresh:
                with self.outage_lock:
                    ends = time.monotonic() + self.args.outage_seconds
                    while time.monotonic() < ends:
                        self.kill_redis(empty=False)
                        time.sleep(0.1)
                    self.faults["redis_outages"] += 1
                    self.last_fault = time.monotonic()
            stop.wait(0.1)

    # -- the run -------------------------------------------------------------------------------

    def inject(self) -> None:
        args = self.args
        plan = (
            ["kill"] * args.kills
            + ["chromium"] * args.chromium_kills
            + ["redis"] * args.redis_restarts
            + ["store"] * args.store_restarts
            + ["race"] * args.races
            + ["supervisor"] * args.supervisor_kills
            + ["sigstop"] * args.sigstops
        )
        self.rng.shuffle(plan)
        refill = 0
        stop_outages = threading.Event()
        outages = threading.Thread(target=self.outages, args=(stop_outages,), daemon=True)
        outages.start()
        for step, fault in enumerate(plan):
            with self.outage_lock:  # one fault at a time: an outage's Redis is not killed twice
                if fault == "kill":
                    self.kill_worker()
                elif fault == "chromium":
                    self.kill_chromium()
                elif fault == "redis":
                    self.kill_redis()
                    self.faults["redis_restarts"] += 1
                elif fault == "store":
                    self.kill_store()
                elif fault == "race":
                    self.race()
            if fault == "supervisor":
                self.kill_supervisor()
            elif fault == "sigstop":
                self.sigstop_worker()
            if step % 10 == 9 and refill < args.jobs // 2:  # keep the workers loaded
                self.submit(args.jobs + refill)
                refill += 1
            time.sleep(self.rng.uniform(0.05, args.fault_gap))
        stop_outages.set()
        outages.join()
        self.last_fault = max(self.last_fault, time.monotonic())


def _cmdline_of(pid: int) -> bytes:
    return _cmdline(pid).replace(b"\0", b" ")


# -- the audit, through the API only ------------------------------------------------------------


def list_jobs(stack: Stack, user: User, query: str = "") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        answer = stack.api.call(
            "GET", f"/jobs?limit=100&skip={len(found)}&sort_order=asc{query}", user.token
        )
        if answer is None or answer.status_code != 200:
            raise RuntimeError(f"GET /jobs failed: {answer and answer.text}")
        page = answer.json()
        found += page
        if len(page) < 100:
            return found


def results_of(stack: Stack, job: Job) -> tuple[int, list[dict[str, Any]]] | None:
    """(total, items) of a job's results, or None when the job is gone (404)."""
    items: list[dict[str, Any]] = []
    total = 0
    while True:
        answer = stack.api.call(
            "GET", f"/results/{job.id}?limit=1000&skip={len(items)}", job.user.token
        )
        if answer is None:
            raise RuntimeError(f"GET /results/{job.id}: no answer")
        if answer.status_code == 404:
            return None
        body = answer.json()
        total = body["total"]
        items += body["results"]
        if len(body["results"]) < 1000:
            return total, items


def wait_terminal(stack: Stack, deadline: float) -> dict[str, dict[str, Any]]:
    """Every job of every user, polled until all are terminal or `deadline` passes; records when
    each finished, in seconds after the last fault."""
    finished = stack.finished
    while True:
        docs = {d["id"]: d for u in stack.users for d in list_jobs(stack, u)}
        for job_id, doc in docs.items():
            if doc["status"] in TERMINAL and job_id not in finished:
                finished[job_id] = time.monotonic() - stack.last_fault
        if all(d["status"] in TERMINAL for d in docs.values()) or time.monotonic() > deadline:
            return docs
        time.sleep(1)


def audit_jobs(stack: Stack, schedule_id: str | None, deadline: float) -> dict[str, dict[str, Any]]:
    figures = stack.figures
    docs = wait_terminal(stack, deadline)
    doc: dict[str, Any] | None
    if schedule_id:
        for doc in list_jobs(stack, stack.users[0], f"&schedule_id={schedule_id}"):
            if doc["id"] not in stack.jobs:
                stack.jobs[doc["id"]] = Job(
                    doc["id"], stack.users[0], {f"SKU-{i:05d}" for i in range(1, 11)}, "schedule"
                )
    lost: list[Any] = []
    stuck: list[Any] = []
    wrong: list[Any] = []
    missing_detail: list[Any] = []
    duplicated = missing = items_total = 0
    for job in stack.jobs.values():
        doc = docs.get(job.id)
        if job.id in stack.deleted:
            if doc is not None:
                lost.append((job.id, f"deleted job is back ({doc['status']})"))
            elif results_of(stack, job) is not None:
                lost.append((job.id, "deleted job still has results"))
            continue
        if doc is None:
            lost.append((job.id, "gone without a delete"))
            continue
        if doc["status"] not in TERMINAL:
            logs = stack.api.call("GET", f"/jobs/{job.id}/logs?limit=6", job.user.token)
            lines = [x["message"] for x in (logs.json()["logs"] if logs and logs.ok else [])]
            stuck.append((job.id, doc["status"], doc.get("attempts"), lines))
            continue
        fetched = results_of(stack, job)
        if fetched is None:
            lost.append((job.id, "its results answer 404"))
            continue
        total, items = fetched
        items_total += len(items)
        skus = [item.get("data", {}).get("sku") for item in items]
        duplicated += len(skus) - len(set(skus))
        if doc["status"] == "completed" and job.expected - set(skus):
            gone = sorted(job.expected - set(skus))
            missing += len(gone)
            # what tells the cause apart: a write that failed (items_failed, an ERROR line)
            # or one the store acknowledged and then lost (neither)
            logs = stack.api.call("GET", f"/jobs/{job.id}/logs?limit=8", job.user.token)
            lines = [x["message"] for x in (logs.json()["logs"] if logs and logs.ok else [])]
            missing_detail.append(
                (
                    job.id,
                    doc["engine"],
                    doc.get("attempts"),
                    f"{gone[0]}..{gone[-1]}",
                    len(gone),
                    f"pages {doc.get('pages_crawled')}, items_failed {doc.get('items_failed')}",
                    lines,
                )
            )
        if not doc["items_scraped"] == total == len(items):
            wrong.append((job.id, doc["items_scraped"], total, len(items)))
    unknown = sorted(set(docs) - set(stack.jobs))
    finished = stack.finished
    budget = figures["finish_budget_s"]
    budget_late = [s for s in finished.values() if s > budget]
    statuses = Counter(d["status"] for d in docs.values())
    failures = Counter(
        (d.get("error") or {}).get("type") for d in docs.values() if d["status"] == "failed"
    )
    figures.update(
        jobs=len(stack.jobs),
        statuses=dict(statuses),
        failed_error_types=dict(failures),
        jobs_lost=len(lost),
        jobs_lost_detail=lost[:5],
        jobs_unknown=len(unknown),
        jobs_stuck=len(stuck),
        jobs_stuck_detail=stuck[:5],
        slowest_finish_after_last_fault_s=round(max(finished.values(), default=0), 1),
        jobs_over_budget=len(budget_late),
        items_stored=items_total,
        items_duplicated=duplicated,
        items_missing=missing,
        items_missing_detail=missing_detail[:5],
        counters_wrong=len(wrong),
        counters_wrong_detail=wrong[:5],
    )
    return docs


def audit_counters(stack: Stack, docs: dict[str, dict[str, Any]]) -> None:
    """`/jobs/stats` and `/monitoring/stats` of each user against that user's jobs and items."""
    wrong: list[Any] = []
    for user in stack.users:
        mine = [d for d in docs.values() if stack.jobs.get(d["id"], None) is not None]
        mine = [d for d in mine if stack.jobs[d["id"]].user is user]
        counts = Counter(d["status"] for d in mine)
        want = {s: counts.get(s, 0) for s in ("pending", "running", *TERMINAL)}
        items = sum(d["items_scraped"] for d in mine)
        # a counter a kill left one off is right after beat's next recount
        deadline = time.monotonic() + 2 * stack.args.counter_check + 30
        while True:
            stats = stack.api.call("GET", "/jobs/stats", user.token)
            monitor = stack.api.call("GET", "/monitoring/stats", user.token)
            got = stats.json() if stats is not None and stats.ok else {}
            seen = monitor.json() if monitor is not None and monitor.ok else {}
            problems = [
                f"/jobs/stats {k}={got.get(k)} (jobs say {v})"
                for k, v in {**want, "total": len(mine)}.items()
                if got.get(k) != v
            ]
            counted = seen.get("status_counts") or {}
            problems += [
                f"/monitoring/stats {k}={counted.get(k, 0)} (jobs say {v})"
                for k, v in want.items()
                if counted.get(k, 0) != v
            ]
            if seen.get("total_items_scraped") != items:
                problems.append(
                    f"/monitoring/stats total_items_scraped={seen.get('total_items_scraped')} "
                    f"(jobs say {items})"
                )
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(2)
        wrong += [(user.name, p) for p in problems]
    stack.figures.update(stats_wrong=len(wrong), stats_wrong_detail=wrong[:5])


def audit_webhooks(stack: Stack, docs: dict[str, dict[str, Any]], patience: float) -> None:
    """Each job's final terminal event, and the terminal event of every run the races ended,
    must reach the receiver (counted by event id) and the deliveries log."""
    for job in stack.jobs.values():
        doc = docs.get(job.id)
        if job.id not in stack.deleted and doc is not None and doc["status"] in TERMINAL:
            stack.expected_events.add((job.id, f"job.{doc['status']}"))
    expected = {e for e in stack.expected_events if e[0] not in stack.deleted}

    # an event id is a stream id of its job's stream: unique per job, not across jobs
    def received() -> dict[tuple[str, str], tuple[str, str]]:
        events = {}
        for headers, body in list(stack.receiver.calls):
            event_id = {k.lower(): v for k, v in headers.items()}.get("x-scrapemaster-event-id")
            try:
                payload = json.loads(body)
            except ValueError:
                continue
            job_id = payload.get("job_id")
            events[(job_id, event_id or payload.get("id"))] = (job_id, payload.get("event"))
        return events

    deadline = time.monotonic() + patience
    while True:
        got = received()
        missing = expected - set(got.values())
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    logged: dict[tuple[str, str], tuple[str, str]] = {}
    states: Counter[str] = Counter()
    truncated = 0
    for user in stack.users:
        answer = stack.api.call("GET", f"/webhooks/{user.hook_id}/deliveries", user.token)
        rows = answer.json() if answer is not None and answer.ok else []
        truncated += len(rows) >= 100
        for row in rows:
            if row.get("event") in TERMINAL_EVENTS:
                logged[(row["job_id"], row["event_id"])] = (row["job_id"], row["event"])
                states[row["state"]] += 1
    calls = len(stack.receiver.calls)
    stack.figures.update(
        webhooks_expected=len(expected),
        webhooks_received=len(got),
        webhooks_posts=calls,
        webhooks_lost=len(missing),
        webhooks_lost_detail=sorted(missing)[:5],
        webhooks_unlogged=len(set(got) - set(logged)) if not truncated else None,
        webhooks_log_states=dict(states),
    )


def audit_schedule(stack: Stack, schedule_id: str | None, created: datetime) -> None:
    """The schedule's history: no slot twice, every minute slot that passed has a record."""
    if schedule_id is None:
        stack.figures["schedule"] = NOT_AVAILABLE
        return
    user = stack.users[0]
    disabled_at = datetime.now(UTC)
    stack.api.call("PATCH", f"/schedules/{schedule_id}", user.token, json={"enabled": False})
    answer = stack.api.call(
        "GET", f"/schedules/history?schedule_id={schedule_id}&limit=500", user.token
    )
    runs = answer.json()["runs"] if answer is not None and answer.ok else []
    slots = Counter(r["scheduled_for"] for r in runs if r.get("trigger") == "cron")
    first = (created + timedelta(minutes=1)).replace(second=0, microsecond=0)
    # a slot closer than a scheduler tick or two to the end may not be handled yet
    last = disabled_at - timedelta(seconds=15)
    passed = []
    slot = first
    while slot <= last:
        passed.append(slot)
        slot += timedelta(minutes=1)
    recorded = {_parse_time(s) for s in slots}
    stack.figures["schedule"] = {
        "slots_passed": len(passed),
        "runs": len(runs),
        "statuses": dict(Counter(r["status"] for r in runs)),
        "slots_doubled": sum(1 for n in slots.values() if n > 1),
        "slots_unrecorded": sum(1 for s in passed if s not in recorded),
    }


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(microsecond=0)


def audit_poison(stack: Stack, poison_id: str | None) -> None:
    if poison_id is None:
        stack.figures["poison"] = "not submitted"
        return
    answer = stack.api.call("GET", f"/jobs/{poison_id}", stack.users[0].token)
    doc = answer.json() if answer is not None and answer.ok else {}
    error = doc.get("error") or {}
    outcome = {
        "status": doc.get("status"),
        "error_type": error.get("type"),
        "message": (error.get("message") or "")[:120],
        "attempts": doc.get("attempts"),
        "killed": len(stack.poison.kills),
    }
    if not feature("max_job_attempts"):
        outcome["check"] = NOT_AVAILABLE
    else:
        outcome["max_job_attempts"] = stack.args.max_attempts
        # failed worker_lost, and run no more than the first time and MAX_JOB_ATTEMPTS
        # take-overs (other faults may have killed some of its runs before it fetched the page)
        capped = len(stack.poison.kills) <= stack.args.max_attempts + 1
        failed = outcome["status"] == "failed" and outcome["error_type"] == "worker_lost"
        outcome["check"] = "ok" if failed and capped else "WRONG"
    stack.figures["poison"] = outcome


def chaos(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir or f"/tmp/scrapemaster-chaos-{uuid.uuid4().hex[:8]}")
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(args, workdir)
    figures = stack.figures
    stack.tracker.start()
    stack.site.start()
    prober_stop = threading.Event()
    try:
        log(f"starting make run (every Procfile process) in {workdir}")
        seconds, said = stack.service.start()
        if said != "ready":
            raise RuntimeError(f"make run: {said}")
        stack.register(max(1, -(-(args.jobs * 3 // 2) // JOBS_PER_USER)))
        created = datetime.now(UTC)
        schedule_id = stack.schedule()
        prober = threading.Thread(target=probe, args=(stack, prober_stop), daemon=True)
        prober.start()
        poison_id = stack.submit_poison() if args.poison else None
        for index in range(args.jobs):
            stack.submit(index)
        log(f"{len(stack.jobs)} jobs submitted for {len(stack.users)} users; injecting faults")
        stack.inject()
        log(f"faults done: {dict(stack.faults)}; waiting for every job to finish")
        figures.update(stack.faults)
        budget = args.stale + args.reconcile + args.job_seconds
        if args.poison:
            budget += (args.max_attempts + 1) * args.stale  # each take-over waits out the stale
        figures["finish_budget_s"] = budget
        deadline = stack.last_fault + budget + 120
        wait_terminal(stack, deadline)  # the schedule fires all along, then stops
        audit_schedule(stack, schedule_id, created)
        docs = audit_jobs(stack, schedule_id, deadline + 60)  # the last slot's job too
        audit_counters(stack, docs)
        audit_webhooks(stack, docs, patience=args.webhook_patience)
        audit_poison(stack, poison_id)
        figures["flower_up"] = stack.service.flower_up()
        prober_stop.set()
        prober.join(15)
        api = stack.api
        figures.update(
            api_requests=api.calls,
            api_5xx=api.bad,
            api_hangs=api.hangs,
            api_503_unavailable=api.unavailable,
            api_5xx_samples=api.samples[:5],
        )
    finally:
        prober_stop.set()
        stack.service.stop()
        stack.site.stop()
        stack.poison.close()
        stack.receiver.close()
    deadline = time.monotonic() + 30
    while stack.tracker.alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    left = stack.tracker.alive()
    figures["chromium_left"] = len([p for p in left if b"chromium" in _cmdline_of(p)])
    figures["processes_left"] = len(left)
    figures["processes_left_detail"] = [_cmdline_of(p)[:80].decode(errors="replace") for p in left]
    for pid in left:  # never leave them behind, whatever the verdict
        stack.tracker.kill(pid)
    stack.tracker.stop.set()
    return figures


def probe(stack: Stack, stop: threading.Event) -> None:
    """GET /jobs every 200 ms throughout: counts 5xx that are not a 503 in the error shape."""
    headers = {"Authorization": f"Bearer {stack.users[0].token}"}
    while not stop.wait(0.2):
        stack.api.once("GET", "/jobs?limit=5", headers)


def verdicts(figures: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    """(measure, value, ok) rows of the report."""
    poison = figures.get("poison") or {}
    stops = figures.get("sigstops") or []
    kills = figures.get("supervisor_kills") or []
    schedule = figures.get("schedule")
    rows: list[tuple[str, Any, bool]] = [
        ("jobs submitted (incl. schedule and poison)", figures.get("jobs"), True),
        (
            "worker SIGKILLs (main / pool child)",
            f"{figures.get('worker_main_kills', 0)} / {figures.get('pool_child_kills', 0)}",
            True,
        ),
        ("Chromium SIGKILLs", figures.get("chromium_kills", 0), True),
        ("Redis restarts (empty)", figures.get("redis_restarts", 0), True),
        ("Redis outages at a job's last page", figures.get("redis_outages", 0), True),
        ("MongoDB wire server kills", figures.get("store_kills", 0), True),
        ("cancel/retry/reset/delete races", figures.get("races", 0), True),
        ("jobs lost", figures.get("jobs_lost"), not figures.get("jobs_lost")),
        ("jobs stuck", figures.get("jobs_stuck"), not figures.get("jobs_stuck")),
        (
            "slowest finish after the last fault (s)",
            f"{figures.get('slowest_finish_after_last_fault_s')} "
            f"(budget {figures.get('finish_budget_s')})",
            not figures.get("jobs_over_budget"),
        ),
        ("items stored", figures.get("items_stored"), True),
        ("items duplicated", figures.get("items_duplicated"), not figures.get("items_duplicated")),
        (
            "items missing (completed jobs)",
            figures.get("items_missing"),
            not figures.get("items_missing"),
        ),
        (
            "counters that disagree with stored items",
            figures.get("counters_wrong"),
            not figures.get("counters_wrong"),
        ),
        (
            "/jobs/stats, /monitoring/stats that disagree",
            figures.get("stats_wrong"),
            not figures.get("stats_wrong"),
        ),
    ]
    outbox = feature("max_job_attempts")  # the durable-events branch brings both
    lost = figures.get("webhooks_lost")
    rows.append(
        (
            "terminal webhooks expected / received (unique event ids) / lost",
            f"{figures.get('webhooks_expected')} / {figures.get('webhooks_received')} / {lost}"
            + ("" if outbox else f" (durable events {NOT_AVAILABLE})"),
            not lost or not outbox,
        )
    )
    unlogged = figures.get("webhooks_unlogged")
    rows.append(("webhooks received but not in /deliveries", unlogged, not unlogged))
    if isinstance(poison, dict) and poison:
        rows.append(
            (
                "poison job: status, error.type, attempts, times killed",
                f"{poison.get('status')}, {poison.get('error_type')}, {poison.get('attempts')}, "
                f"{poison.get('killed')}"
                + ("" if poison.get("check") != NOT_AVAILABLE else f" (cap {NOT_AVAILABLE})"),
                poison.get("check") in ("ok", NOT_AVAILABLE),
            )
        )
    for stop in stops:
        rows.append(
            (
                "SIGSTOPped worker replaced in (s)",
                stop if stop != NOT_AVAILABLE else f"{NOT_AVAILABLE} (resumed by the suite)",
                stop is not None,
            )
        )
    for kill in kills:
        rows.append(
            (
                "supervisor SIGKILL: processes left / reaped in / new supervisor ready in",
                f"{kill['left']} / {kill['reaped_in_s']} s / {kill['new_supervisor_ready_s']} s"
                + (
                    " (not ready in its 120 s: a loaded machine)"
                    if "new_supervisor_said" in kill
                    else ""
                ),
                # nothing of the old one left is the check; a new supervisor slower than its
                # startup allowance on a loaded machine is reported, and the jobs' own checks
                # (none lost or stuck, each finished within the budget) say whether it recovered
                kill["left"] == 0,
            )
        )
    if isinstance(schedule, dict):
        rows.append(
            (
                "schedule: minute slots passed / runs / doubled / unrecorded",
                f"{schedule['slots_passed']} / {schedule['runs']} / {schedule['slots_doubled']} / "
                f"{schedule['slots_unrecorded']}",
                not schedule["slots_doubled"] and not schedule["slots_unrecorded"],
            )
        )
    rows += [
        ("Flower answering at the end", figures.get("flower_up"), bool(figures.get("flower_up"))),
        ("Chromium processes left", figures.get("chromium_left"), not figures.get("chromium_left")),
        (
            "service processes left",
            figures.get("processes_left"),
            not figures.get("processes_left"),
        ),
        (
            "API calls / 5xx (not 503 in the error shape) / hangs",
            f"{figures.get('api_requests')} / {figures.get('api_5xx')} / "
            f"{figures.get('api_hangs')}",
            not figures.get("api_5xx") and not figures.get("api_hangs"),
        ),
        ("API 503 during outages (expected)", figures.get("api_503_unavailable"), True),
    ]
    return rows


def report(figures: dict[str, Any]) -> bool:
    rows = verdicts(figures)
    print("\n| measure | value |\n|---|---|")
    for label, value, ok in rows:
        print(f"| {label} | {value}{'' if ok else ' ✗'} |")
    for key in (
        "statuses",
        "failed_error_types",
        "jobs_lost_detail",
        "jobs_stuck_detail",
        "items_missing_detail",
        "counters_wrong_detail",
        "stats_wrong_detail",
        "webhooks_lost_detail",
        "webhooks_log_states",
        "poison",
        "supervisor_kills",
        "schedule",
        "processes_left_detail",
        "api_5xx_samples",
    ):
        if figures.get(key):
            print(f"{key}: {figures[key]}")
    return all(ok for _, _, ok in rows)


TITLE = "Chaos"
ABOUT = (
    "The whole `make run` (every Procfile process) under faults while 60+ multi-page jobs of "
    "both engines and a poison job run: worker and Chromium SIGKILLs, Redis killed (back "
    "empty) and kept down at a job's last page, the MongoDB wire server killed, cancel/retry/"
    "reset/delete races, the supervisor SIGKILLed and a worker SIGSTOPped; then everything "
    "audited through the REST API. What each check means: [The chaos suite](operations/chaos.md)."
)
LABELS: dict[str, str] = {}  # the figures are named by their labels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--short", action="store_true", help="the quick run used by make test")
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--page-delay", type=float, default=0.2)
    parser.add_argument("--kills", type=int, default=100, help="worker SIGKILLs")
    parser.add_argument("--chromium-kills", type=int, default=5)
    parser.add_argument("--redis-restarts", type=int, default=5, help="killed, back empty")
    parser.add_argument("--redis-outages", type=int, default=6, help="at a job's last page")
    parser.add_argument("--outage-seconds", type=float, default=8)
    parser.add_argument("--store-restarts", type=int, default=3)
    parser.add_argument("--races", type=int, default=30)
    parser.add_argument("--supervisor-kills", type=int, default=2)
    parser.add_argument("--sigstops", type=int, default=1)
    parser.add_argument("--no-poison", dest="poison", action="store_false")
    parser.add_argument("--fault-gap", type=float, default=1.5, help="max seconds between faults")
    parser.add_argument("--stale", type=int, default=20, help="JOB_STALE_SECONDS")
    parser.add_argument("--reconcile", type=int, default=60, help="RECONCILE_AFTER_SECONDS")
    parser.add_argument("--max-attempts", type=int, default=3, help="MAX_JOB_ATTEMPTS")
    parser.add_argument("--liveness", type=int, default=15, help="LIVENESS_TIMEOUT_SECONDS")
    parser.add_argument(
        "--sigstop-seconds", type=float, default=10, help="how long a hang lasts without liveness"
    )
    parser.add_argument(
        "--reap-grace", type=float, default=45, help="seconds the reaper gets after a kill"
    )
    parser.add_argument("--job-seconds", type=int, default=30, help="a job's own run time")
    parser.add_argument(
        "--counter-check", type=float, default=15, help="COUNTER_CHECK_SECONDS (beat's recount)"
    )
    parser.add_argument("--shutdown-grace", type=float, help="WORKER_SHUTDOWN_GRACE_SECONDS")
    parser.add_argument(
        "--webhook-patience", type=float, default=60, help="seconds to wait for late webhooks"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workdir", help="the var dir of `make run` (default: one in /tmp)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.short:
        args.jobs, args.kills, args.chromium_kills, args.redis_restarts = 12, 10, 1, 1
        args.redis_outages, args.outage_seconds = 1, 4
        args.store_restarts, args.races, args.fault_gap = 1, 6, 1.0
        args.supervisor_kills, args.sigstops, args.liveness = 1, 1, 10
        args.stale, args.reconcile, args.sigstop_seconds = 6, 10, 5
        args.max_attempts, args.shutdown_grace, args.webhook_patience = 2, 5, 20
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    log(f"seed {args.seed}")
    raw = chaos(args)
    ok = report(raw)
    figures: dict[str, Any] = {}
    for label, value, _ in verdicts(raw):  # a label met twice (two kills) holds a list
        if label in figures:
            before = figures[label]
            figures[label] = [*(before if isinstance(before, list) else [before]), value]
        else:
            figures[label] = value
    return {
        "figures": figures,
        "ratios": {},
        "notes": [f"seed {args.seed}"] + ([] if ok else ["a check failed (✗)"]),
        "ok": ok,
        "details": raw,
    }
