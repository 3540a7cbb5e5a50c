"""Chaos: the real `make run` under faults, then an audit of every job it was given.

    .venv/bin/python bench/chaos.py [--short] [--jobs 60] [--kills 100] [--redis-restarts 5]
                                    [--store-restarts 3] [--races 30] [--seed N]

Starts deploy/local.py (the `make run` supervisor) on its own var dir, ports and Redis (which
it starts itself, so the harness may kill it), serves the demo site, submits multi-page jobs
of both engines, and while they run: SIGKILLs worker processes (pool children and main
processes) at random moments, kills Redis and brings it back empty, kills the MongoDB wire
server (restarted on its data), and races cancels, retries and deletes with running jobs. An
API prober counts answers ≥ 500 other than 503-in-the-error-shape, and hangs, throughout.

Afterwards every job is audited: lost (gone without a delete, or never terminal), stuck (how
long after the last fault it took to finish), items duplicated or missing (completed jobs must
hold exactly the site's items), counters that disagree with the stored items, and Chromium
processes left once the supervisor has stopped. The table is printed; exit 1 if any is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import pymongo  # noqa: E402
import requests  # noqa: E402

from shared import embedded, items  # noqa: E402
from tests.helpers import processes_of as processes  # noqa: E402
from tests.sites.server import SiteServer  # noqa: E402

TERMINAL = ("completed", "failed", "cancelled")
SELECTORS = {"sku": "./@data-sku", "title": "h2.product-title::text"}
CONFIG = {"item_selector": "div.product", "follow_links": True, "link_selector": "li.next a"}


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_pids(var: Path | None, *needles: bytes, timeout: float = 60) -> list[int]:
    """Pids matching any of `needles` (of this service when `var` is given), waiting for one to
    exist: a process killed a moment ago is being restarted."""
    deadline = time.monotonic() + timeout
    while True:
        if var is None:
            found = [p for p in _all_pids() if any(n in _cmdline(p) for n in needles)]
        else:
            found = [p for n in needles for p in processes(var, n)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def wait_worker(var: Path, main: bool, rng: random.Random, timeout: float = 60) -> int | None:
    """A worker main process (or one of its pool children) of a worker that is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [
            p for n in (b"worker\0-Q\0scrapy", b"worker\0-Q\0playwright") for p in processes(var, n)
        ]
        children = [p for p in pids if _ppid(p) in pids]
        if children:
            mains = sorted({_ppid(p) for p in children})
            return rng.choice(mains if main else children)
        time.sleep(0.2)
    return None


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _all_pids() -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def chromium_count() -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if b"chromium" in (entry / "cmdline").read_bytes()[:200]:
                    count += 1
    return count


def _die_with_parent() -> None:
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Service:
    """`make run` (deploy/local.py) in a var dir of its own."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.var = workdir / "var"
        self.api_port = embedded.free_port()
        self.redis_port = embedded.free_port()
        self.mongo_port = embedded.free_port()
        self.env = dict(
            os.environ,
            ENV="local",
            VAR_DIR=str(self.var),
            API_PORT=str(self.api_port),
            FLOWER_PORT=str(embedded.free_port()),
            EMBEDDED_MONGO_PORT=str(self.mongo_port),
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            RATE_LIMIT_ENABLED="false",
            LOG_LEVEL="WARNING",
            **env,
        )
        self.env.pop("MONGO_URL", None)
        self.log = workdir / "make-run.log"
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{self.api_port}/api/v1"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "deploy" / "local.py"), "--only", ONLY],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # the harness killed: its make run stops too
            )
        deadline = time.monotonic() + 180
        while "| ready" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"make run did not start: {self.log.read_text()[-3000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in processes(self.var):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def mongo(self) -> Any:
        url = f"mongodb://127.0.0.1:{self.mongo_port}/?directConnection=true&retryWrites=false"
        return pymongo.MongoClient(url, serverSelectionTimeoutMS=30000)["scrapemaster"]


ONLY = "api,worker-scrapy,worker-playwright,worker-maintenance,beat"


class Prober(threading.Thread):
    """GET /jobs every 200 ms: counts 5xx that are not a 503 in the error shape, and hangs."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.base, self.headers = base, headers
        self.stop = threading.Event()
        self.requests = self.bad = self.hangs = self.unavailable = 0
        self.samples: list[str] = []

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.requests += 1
            try:
                answer = requests.get(f"{self.base}/jobs?limit=5", headers=self.headers, timeout=10)
            except requests.Timeout:
                self.hangs += 1
                continue
            except requests.RequestException as exc:
                self.bad += 1
                self.samples.append(f"connection: {exc}"[:200])
                continue
            if answer.status_code == 503:
                body = _json(answer)
                if body.get("type") == "unavailable" and body.get("request_id"):
                    self.unavailable += 1
                    continue
            if answer.status_code >= 500:
                self.bad += 1
                self.samples.append(f"{answer.status_code}: {answer.text[:200]}")


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def call(method: str, url: str, **kwargs: Any) -> requests.Response | None:
    """An API call that survives outages: retried on 503/connection errors for 60 s."""
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = requests.request(method, url, timeout=15, **kwargs)
            if answer.status_code != 503:
                return answer
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    workdir = Path(args.workdir or f"/tmp/scrapemaster-chaos-{uuid.uuid4().hex[:8]}")
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"JOB_STALE_SECONDS": str(args.stale), "RECONCILE_AFTER_SECONDS": str(args.reconcile)}
    service = Service(workdir, env)
    site = SiteServer(pages=args.pages, items_per_page=10, delay=args.page_delay).start()
    chromium_before = chromium_count()
    figures: dict[str, Any] = {}
    try:
        log(f"starting make run in {workdir}")
        service.start()
        user = f"chaos{uuid.uuid4().hex[:6]}"
        call(
            "POST",
            f"{service.base}/auth/register",
            json={"username": user, "email": f"{user}@example.test", "password": "chaos-pass-1"},
        )
        token = call(
            "POST",
            f"{service.base}/auth/login",
            json={"username": user, "password": "chaos-pass-1"},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        prober = Prober(service.base, headers)
        prober.start()
        jobs: dict[str, dict[str, Any]] = {}
        deleted: set[str] = set()
        faults = {"worker_kills": 0, "redis_restarts": 0, "store_restarts": 0, "races": 0}

        def submit(index: int) -> None:
            engine = "playwright" if index % 3 == 0 else "scrapy"
            path = "/js/catalog/" if engine == "playwright" else "/catalog/"
            body = {
                "url": site.url_for(path),
                "engine": engine,
                "selectors": SELECTORS,
                "config": {**CONFIG, "max_pages": args.pages},
            }
            answer = call("POST", f"{service.base}/jobs", json=body, headers=headers)
            if answer is not None and answer.status_code == 201:
                jobs[answer.json()["id"]] = {"engine": engine}

        for index in range(args.jobs):
            submit(index)
        log(f"{len(jobs)} jobs submitted; injecting faults")
        plan = (
            ["kill"] * args.kills
            + ["redis"] * args.redis_restarts
            + ["store"] * args.store_restarts
            + ["race"] * args.races
        )
        rng.shuffle(plan)
        refill = 0
        for step, fault in enumerate(plan):
            if fault == "kill":
                # a third of the kills hit a worker's main process, the rest its pool children;
                # either way only a worker that is up (has its pool), as a real fault would
                main = rng.random() < 1 / 3
                target = wait_worker(service.var, main, rng)
                if target:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(target, signal.SIGKILL)
                        faults["worker_kills"] += 1
            elif fault == "redis":
                # redis-server rewrites its environ with its title: find it by its port
                for pid in wait_pids(None, f"127.0.0.1:{service.redis_port}".encode()):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(FileNotFoundError):
                    (service.var / "redis" / "dump.rdb").unlink()  # back empty, as a new Redis
                faults["redis_restarts"] += 1
            elif fault == "store":
                for pid in processes(service.var, b"secantus"):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                faults["store_restarts"] += 1
            else:
                job_id = rng.choice(sorted(set(jobs) - deleted))
                action = rng.choice(["cancel", "retry", "delete", "reset"])
                if action == "delete":
                    answer = call("DELETE", f"{service.base}/jobs/{job_id}", headers=headers)
                    if answer is not None and answer.status_code == 204:
                        deleted.add(job_id)
                else:
                    call("POST", f"{service.base}/jobs/{job_id}/{action}", headers=headers)
                faults["races"] += 1
            if step % 10 == 9 and refill < args.jobs // 2:  # keep the workers loaded
                submit(args.jobs + refill)
                refill += 1
            time.sleep(rng.uniform(0.05, args.fault_gap))
        last_fault = time.monotonic()
        log(f"faults done: {faults}; waiting for every job to finish")
        figures.update(faults)
        figures["jobs"] = len(jobs)
        figures.update(audit(service, site, jobs, deleted, headers, last_fault, args))
        prober.stop.set()
        prober.join(15)
        figures["api_requests"] = prober.requests
        figures["api_5xx"] = prober.bad
        figures["api_hangs"] = prober.hangs
        figures["api_503_unavailable"] = prober.unavailable
        figures["api_5xx_samples"] = prober.samples[:5]
    finally:
        service.stop()
        site.stop()
    deadline = time.monotonic() + 20
    while chromium_count() > chromium_before and time.monotonic() < deadline:
        time.sleep(0.5)
    figures["chromium_left"] = max(0, chromium_count() - chromium_before)
    figures["processes_left"] = len(processes(service.var))
    return figures


def audit(
    service: Service,
    site: SiteServer,
    jobs: dict[str, dict[str, Any]],
    deleted: set[str],
    headers: dict[str, str],
    last_fault: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    db = service.mongo()
    budget = args.stale + args.reconcile + args.job_seconds
    pending = set(jobs) - deleted
    finished_at: dict[str, float] = {}
    deadline = last_fault + budget + 120
    while pending and time.monotonic() < deadline:
        for doc in db.jobs.find({"_id": {"$in": sorted(pending)}}, {"status": 1}):
            if doc["status"] in TERMINAL:
                finished_at[doc["_id"]] = time.monotonic() - last_fault
                pending.discard(doc["_id"])
        gone = pending - {d["_id"] for d in db.jobs.find({"_id": {"$in": sorted(pending)}})}
        pending -= gone
        if pending:
            time.sleep(1)
    expected = {f"SKU-{i:05d}" for i in range(1, args.pages * 10 + 1)}
    lost, stuck, duplicated, missing, wrong_counters = [], [], 0, 0, []
    statuses: dict[str, int] = {}
    for job_id in jobs:
        doc = db.jobs.find_one({"_id": job_id})
        results = list(items.iterate(db, job_id))
        if job_id in deleted:
            if doc is not None:
                lost.append((job_id, f"deleted job is back ({doc.get('status')})"))
            elif results:
                lost.append((job_id, f"deleted job still has {len(results)} items"))
            continue
        if doc is None:
            lost.append((job_id, "gone without a delete"))
            continue
        statuses[doc["status"]] = statuses.get(doc["status"], 0) + 1
        if doc["status"] not in TERMINAL:
            stuck.append((job_id, doc["status"]))
            continue
        skus = [r.get("data", {}).get("sku") for r in results]
        duplicated += len(skus) - len(set(skus))
        if doc["status"] == "completed":
            missing += len(expected - set(skus))
        if doc.get("items_scraped") != len(results):
            wrong_counters.append((job_id, doc.get("items_scraped"), len(results)))
    late = [s for s in finished_at.values() if s > budget]
    return {
        "statuses": statuses,
        "jobs_lost": len(lost),
        "jobs_lost_detail": lost[:5],
        "jobs_stuck": len(stuck),
        "jobs_stuck_detail": stuck[:5],
        "slowest_finish_after_last_fault_s": round(max(finished_at.values(), default=0), 1),
        "finish_budget_s": budget,
        "jobs_over_budget": len(late),
        "items_duplicated": duplicated,
        "items_missing": missing,
        "counters_wrong": len(wrong_counters),
        "counters_wrong_detail": wrong_counters[:5],
    }


def report(figures: dict[str, Any]) -> bool:
    keys = [
        ("jobs", "jobs submitted"),
        ("worker_kills", "worker SIGKILLs"),
        ("redis_restarts", "Redis restarts (empty)"),
        ("store_restarts", "MongoDB wire server kills"),
        ("races", "cancel/retry/reset/delete races"),
        ("jobs_lost", "jobs lost"),
        ("jobs_stuck", "jobs stuck"),
        ("slowest_finish_after_last_fault_s", "slowest finish after the last fault (s)"),
        ("jobs_over_budget", "jobs over STALE+RECONCILE+run time"),
        ("items_duplicated", "items duplicated"),
        ("items_missing", "items missing (completed jobs)"),
        ("counters_wrong", "counters that disagree with stored items"),
        ("chromium_left", "Chromium processes left"),
        ("processes_left", "service processes left"),
        ("api_5xx", "API 5xx (not 503 in the error shape)"),
        ("api_hangs", "API hangs (>10 s)"),
        ("api_503_unavailable", "API 503 during outages (expected)"),
    ]
    print("\n| measure | value |\n|---|---|")
    for key, label in keys:
        print(f"| {label} | {figures.get(key)} |")
    for key in (
        "statuses",
        "jobs_lost_detail",
        "jobs_stuck_detail",
        "counters_wrong_detail",
        "api_5xx_samples",
    ):
        if figures.get(key):
            print(f"{key}: {figures[key]}")
    must_be_zero = (
        "jobs_lost",
        "jobs_stuck",
        "jobs_over_budget",
        "items_duplicated",
        "items_missing",
        "counters_wrong",
        "chromium_left",
        "processes_left",
        "api_5xx",
        "api_hangs",
    )
    return all(not figures.get(k) for k in must_be_zero)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the quick run used by make test")
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--page-delay", type=float, default=0.2)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--redis-restarts", type=int, default=5)
    parser.add_argument("--store-restarts", type=int, default=3)
    parser.add_argument("--races", type=int, default=30)
    parser.add_argument("--fault-gap", type=float, default=1.5, help="max seconds between faults")
    parser.add_argument("--stale", type=int, default=20, help="JOB_STALE_SECONDS")
    parser.add_argument("--reconcile", type=int, default=60, help="RECONCILE_AFTER_SECONDS")
    parser.add_argument("--job-seconds", type=int, default=30, help="a job's own run time")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workdir")
    args = parser.parse_args(argv)
    if args.short:
        args.jobs, args.kills, args.redis_restarts = 12, 12, 1
        args.store_restarts, args.races, args.fault_gap = 1, 6, 1.0
        args.stale, args.reconcile = 6, 10
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    log(f"seed {args.seed}")
    figures = run(args)
    ok = report(figures)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
