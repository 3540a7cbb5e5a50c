"""What the benchmarks share: the stack of real processes they measure, process and timing
helpers, and the CPU/memory sampler (the crawl shape is in bench/shape.py, re-exported here).

Test support (the Stack, the demo sites, wait_for) comes from the `testing` package, never
from `tests`.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.shape import js_urls, one_page_job, service_job  # noqa: F401  (for the subcommands)
from testing.helpers import Stack

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"  # logs of runs (untracked)

TERMINAL = ("completed", "failed", "cancelled")
PRODUCTION_PROGRESS_INTERVAL = "0.5"  # Settings.progress_interval_seconds default (Stack: 0.2)


def log(message: str, who: str = "bench") -> None:
    print(f"[{who} {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def median_ms(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def median_run(runs: list[dict], key: str = "pages_per_s") -> dict:
    """The run with the median `key` (lower median for an even count)."""
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[(len(ordered) - 1) // 2]


def ratio(value: float | None, bare: float | None) -> float | None:
    return round(value / bare, 3) if value and bare else None


def noisy(run: dict, wall: float | None = None) -> bool:
    """More than 10% of one core went to processes this benchmark did not start."""
    wall = wall or run.get("crawl_s") or run.get("post_to_completed_s") or run.get("wall_s") or 1
    return (run.get("foreign_cpu") or {}).get("total", 0) > 0.1 * wall


# --------------------------------------------------------------------------- processes


def raise_on_sigterm() -> None:
    """SIGTERM and SIGINT unwind the stack (so every `finally` stops what it started)."""

    def _term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored


class Cleanup:
    """Everything started, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], Any]]] = []

    def push(self, name: str, fn: Callable[[], Any]) -> None:
        self._steps.append((name, fn))

    def run(self) -> None:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip this
        try:
            while self._steps:
                name, fn = self._steps.pop()
                try:
                    fn()
                except Exception as exc:  # keep stopping the rest
                    log(f"cleanup of {name} failed: {exc!r}")
        finally:
            signal.signal(signal.SIGINT, old)

    def __enter__(self) -> Cleanup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.run()


def kill_group(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM the process group of `proc`, then SIGKILL what is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def start_site(pages: int, cleanup: Cleanup) -> tuple[str, subprocess.Popen]:
    """The demo site (testing.sites.server) in a process of its own: its URL and process."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "testing.sites.server",
            "--pages",
            str(pages),
            "--items-per-page",
            "10",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    cleanup.push("site", lambda: kill_group(proc))
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("READY "):
                return line.split()[1].rstrip("/"), proc
            if not line and proc.poll() is not None:
                break
    raise RuntimeError("demo site did not print READY")


def run_program(
    module: str, argv: list[str], cleanup: Cleanup, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """`python -m <module> argv` (a bare-tool baseline) in a fresh interpreter and session."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *argv],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    cleanup.push(module, lambda: kill_group(proc, 2))
    return proc


def result_line(proc: subprocess.Popen, out: str, err: str) -> dict:
    """The `RESULT {json}` line a baseline program prints last."""
    import json

    lines = [x for x in out.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{proc.args!r} failed ({proc.returncode}):\n{err[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


@contextlib.contextmanager
def stores(workdir: Path) -> Iterator[tuple[Any, Any]]:
    """redis-server and SecantusDB (on disk) in `workdir`, removed afterwards."""
    from deploy import embedded

    redis = embedded.start_redis(workdir / "redis")
    try:
        mongo = embedded.start_secantus(
            workdir / "secantus-data", log_path=str(workdir / "secantus.log")
        )
        try:
            yield redis, mongo
        finally:
            mongo.stop()
            shutil.rmtree(workdir / "secantus-data", ignore_errors=True)
    finally:
        redis.stop()
        shutil.rmtree(workdir / "redis", ignore_errors=True)


class BenchStack(Stack):
    """A Stack that knows the pids of its Redis and SecantusDB (for the Sampler)."""

    mongo_pid = 0
    redis_pid = 0


@contextlib.contextmanager
def stack_of(workdir: Path, prefix: str = "bench") -> Iterator[BenchStack]:
    """A Stack on a Redis and a SecantusDB of its own; nothing started yet."""
    with stores(workdir) as (redis, mongo):
        stack_dir = workdir / "stack"
        stack_dir.mkdir(parents=True, exist_ok=True)
        stack = BenchStack(redis.url, mongo.url, f"{prefix}_{uuid.uuid4().hex[:10]}", stack_dir)
        stack.mongo_pid = mongo.proc.pid
        stack.redis_pid = redis.proc.pid
        try:
            yield stack
        finally:
            stack.stop()


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def server_phases(job: dict, posted_wall: float, seen_wall: float) -> dict:
    """Where the time went, from the job's own timestamps (ms precision, same host clock)."""
    created, started, completed = (
        _ts(job.get("created_at")),
        _ts(job.get("started_at")),
        _ts(job.get("completed_at")),
    )
    phases: dict[str, float | None] = {}
    if created is not None:
        phases["post_to_created_ms"] = round((created - posted_wall) * 1000, 1)
    if created is not None and started is not None:
        phases["queued_ms"] = round((started - created) * 1000, 1)  # enqueue, Celery, claim
    if started is not None and completed is not None:
        phases["running_ms"] = round((completed - started) * 1000, 1)  # engine + sink + finish
    if completed is not None:
        phases["completed_to_seen_ms"] = round((seen_wall - completed) * 1000, 1)
    return phases


class Service:
    """The service as a user meets it: gunicorn (API) and Celery workers on a Redis and a
    SecantusDB (on disk) of their own, one registered user, jobs timed from POST to terminal."""

    def __init__(self, stack: BenchStack, site_pid: int) -> None:
        import requests

        self.stack = stack
        self.site_pid = site_pid
        self.session = requests.Session()
        self.headers: dict[str, str] = {}

    def start(self, scrapy_workers: int = 1) -> Service:
        import redis as redis_lib

        log(f"starting API (gunicorn) and a scrapy worker (concurrency {scrapy_workers})")
        redis_lib.Redis.from_url(self.stack.redis_url).flushdb()
        self.stack.start_api()
        self.stack.start_worker(
            "scrapy",
            concurrency=scrapy_workers,
            PROGRESS_INTERVAL_SECONDS=PRODUCTION_PROGRESS_INTERVAL,
        )
        self.headers = self.stack.register()
        return self

    def roots(self) -> dict[str, int]:
        """The process trees a Sampler follows."""
        return {
            "worker": self.stack.procs["worker-scrapy"].pid,
            "secantusdb": self.stack.mongo_pid,
            "api": self.stack.procs["api"].pid,
            "redis": self.stack.redis_pid,
            "site": self.site_pid,
        }

    def post(self, spec: dict) -> dict:
        answer = self.session.post(
            self.stack.url("/jobs"), json=spec, headers=self.headers, timeout=30
        )
        if answer.status_code != 201:
            raise RuntimeError(f"POST /jobs answered {answer.status_code}: {answer.text[:500]}")
        return answer.json()

    def get(self, path: str) -> Any:
        answer = self.session.get(self.stack.url(path), headers=self.headers, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def run_job(self, spec: dict, poll: float, timeout: float) -> dict:
        """Submit and poll until terminal: the job plus client-side timings under `_bench`."""
        t0 = time.perf_counter()
        wall0 = time.time()
        job = self.post(spec)
        t_posted = time.perf_counter()
        polls = 0
        deadline = t0 + timeout
        while True:
            current = self.get(f"/jobs/{job['id']}")
            polls += 1
            now = time.perf_counter()
            if current["status"] in TERMINAL:
                break
            if now > deadline:
                raise RuntimeError(f"job {job['id']} not finished after {timeout} s: {current}")
            time.sleep(poll)
        elapsed = now - t0
        current["_bench"] = {
            "elapsed_s": elapsed,
            "post_s": t_posted - t0,
            "polls": polls,
            "server": server_phases(current, wall0, wall0 + elapsed),
        }
        return current

    def burst(self, specs: list[dict], timeout: float = 600) -> float:
        """Submit every spec at once, wait until none is pending or running: jobs/s."""
        from testing.helpers import wait_for

        started = time.perf_counter()
        for spec in specs:
            self.post(spec)

        def finished() -> bool:
            stats = self.get("/jobs/stats")
            return stats["pending"] == 0 and stats["running"] == 0

        wait_for(finished, timeout, interval=0.02, message="burst finished")
        return len(specs) / (time.perf_counter() - started)

    def logs(self, job_id: str) -> list[dict]:
        data = self.get(f"/jobs/{job_id}/logs")
        return data.get("logs", data) if isinstance(data, dict) else data


def warm_up(svc: Service, site: str) -> float:
    """One one-page job (the first imports Scrapy and starts the reactor): its ms."""
    log("warm-up: one one-page job (excluded: first job imports Scrapy, starts the reactor)")
    warm = svc.run_job(one_page_job(site, 1), poll=0.05, timeout=120)
    elapsed = warm["_bench"]["elapsed_s"] * 1000
    log(f"  warm-up job {warm['status']} in {elapsed:.0f} ms")
    return round(elapsed, 1)


# --------------------------------------------------------------------------- CPU and memory

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(ppid, cpu seconds, rss bytes) of `pid` from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    # fields[0] is state (field 3 of proc(5)): ppid=4, utime=14, stime=15, rss=24
    ppid, utime, stime, rss = int(fields[1]), int(fields[11]), int(fields[12]), int(fields[21])
    return ppid, (utime + stime) / TICK, rss * PAGE


def snapshot() -> dict[int, tuple[int, float, int]]:
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                found[int(name)] = stat
    return found


def tree(root: int, procs: dict[int, tuple[int, float, int]]) -> list[int]:
    """`root` and all its descendants present in `procs`."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            out.append(pid)
            todo.extend(children.get(pid, []))
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return "?"
    words = raw.rstrip(b"\0").split(b"\0")
    words[0] = os.path.basename(words[0])  # python, not /work/.../.venv/bin/python
    return b" ".join(words).decode(errors="replace")[:100]


def _self_cpu() -> float:
    times = os.times()
    return times.user + times.system


def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return total - idle, total


class Sampler:
    """Samples the process trees of named roots every `interval` s: peak RSS, CPU seconds, and
    the CPU everything else on the machine used meanwhile (the measurement's noise)."""

    def __init__(self, roots: Callable[[], dict[str, int]], interval: float = 0.2):
        self.roots = roots
        self.interval = interval
        self.peak_rss: dict[str, int] = {}
        self._cpu0: dict[str, float] = {}
        self._cpu: dict[str, float] = {}
        self._self0 = self._self1 = 0.0
        self._sys0 = (0.0, 0.0)
        self._sys1 = (0.0, 0.0)
        self._others_first: dict[int, float] = {}
        self._others_last: dict[int, float] = {}
        self._started = False
        self._names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _measure(self) -> dict[str, tuple[float, int]]:
        procs = snapshot()
        out = {}
        ours = {os.getpid()}
        for name, root in self.roots().items():
            pids = tree(root, procs)
            ours.update(pids)
            out[name] = (sum(procs[p][1] for p in pids), sum(procs[p][2] for p in pids))
        for pid, (_, cpu, _) in procs.items():  # CPU of everything else on the machine
            if pid not in ours:
                self._others_first.setdefault(pid, 0.0 if self._started else cpu)
                self._others_last[pid] = cpu
                if cpu - self._others_first[pid] > 0.1 and pid not in self._names:
                    self._names[pid] = cmdline(pid)
        self._started = True
        return out

    def _sample(self) -> None:
        for name, (cpu, rss) in self._measure().items():
            self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)
            # max: a tree whose processes have exited reads 0; keep its last live figure
            self._cpu[name] = max(self._cpu.get(name, 0.0), cpu)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> Sampler:
        self._self0 = _self_cpu()
        self._sys0 = system_cpu()
        first = self._measure()
        self._cpu0 = {name: cpu for name, (cpu, _) in first.items()}
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self._sys1 = system_cpu()
        self._self1 = _self_cpu()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds each tree used between start() and stop()."""
        return {n: round(self._cpu.get(n, 0.0) - c0, 2) for n, c0 in self._cpu0.items()}

    def peak_rss_mb(self) -> dict[str, float]:
        return {k: round(v / 2**20, 1) for k, v in self.peak_rss.items()}

    def foreign_cpu(self, top: int = 3) -> dict:
        """CPU seconds the machine spent outside the measured trees and this process.

        `total` comes from /proc/stat (includes short-lived processes and the kernel);
        `top` names the biggest long-enough-lived other processes seen by the sampler.
        """
        busy = (self._sys1[0] - self._sys0[0]) / TICK
        ours = sum(self.cpu_seconds().values()) + (self._self1 - self._self0)
        deltas = {
            pid: last - self._others_first.get(pid, 0.0) for pid, last in self._others_last.items()
        }
        biggest = sorted(deltas.items(), key=lambda kv: -kv[1])[:top]
        named = [
            {"pid": pid, "cpu_s": round(cpu, 2), "cmd": self._names.get(pid) or cmdline(pid)}
            for pid, cpu in biggest
            if cpu >= 0.2
        ]
        return {"total": round(max(0.0, busy - ours), 2), "top": named}

    def system_busy(self) -> float:
        """Fraction of all CPUs busy between start() and stop()."""
        busy = self._sys1[0] - self._sys0[0]
        total = self._sys1[1] - self._sys0[1]
        return round(busy / total, 3) if total else 0.0
