"""Benchmark: bare Scrapy vs. the service on a local static site, one-page job latency, and
bare Playwright vs. the service on the local JavaScript catalog (with the worker's memory).

    .venv/bin/python bench/run.py [--pages 1000] [--latency-jobs 40] [--concurrency 8]
                                  [--json PATH] [--only scrapy|latency|playwright]
                                  [--pw-pages 60] [--pw-concurrency 1,2] [--pw-repeat 2]
                                  [--soak-jobs 100] [--soak-pages 2]

1. The demo site runs in its own process (`python -m testing.sites.server`).
2. Bare Scrapy crawls it in a fresh interpreter (bench/bare_scrapy.py).
3. redis-server and SecantusDB (on disk) start, then gunicorn (API) and one Celery worker on
   queue `scrapy` with concurrency 1 (testing.helpers.Stack). One warm-up one-page job runs (the
   worker imports Scrapy and starts its reactor on its first job), then one job crawls the whole
   site; timed from POST /jobs to status completed (polled every 50 ms).
4. One-page jobs, one after another, each timed POST -> completed (polled every 10 ms).
5. Playwright (bench/browser.py): a playwright worker joins the stack; bare Playwright
   (bench/bare_playwright.py) and the service render the same JavaScript catalog pages at the
   same concurrency; then a soak of small jobs tracks the worker's memory (PSS with Chromium).

Both crawls use the same shape (bench/common.py): 100 start URLs, each followed along
`li.next a`, so every page is fetched once and concurrency has work to do.
Logs and data of a run go to bench/results/<timestamp>/ (data directories are removed).

The one entry point of bench/: `--only chaos|events|changes|auto|soak|profile|charset|hang
[options]` runs the chaos suite, the event and webhook figures, change detection, auto's probe,
the soak as history grows, a one-page job's phases and MongoDB round trips, the browser's cost of
reading pages alike in both engines, or a hung worker's replacement (PARTS below; each module's
docstring lists its options).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import browser  # noqa: E402
import requests  # noqa: E402
import spy  # noqa: E402
from common import one_page_job, service_job  # noqa: E402
from procstats import Sampler, snapshot, tree  # noqa: E402

from deploy import embedded  # noqa: E402
from shared import items  # noqa: E402
from testing.helpers import Stack  # noqa: E402

TERMINAL = ("completed", "failed", "cancelled")
PRODUCTION_PROGRESS_INTERVAL = "0.5"  # Settings.progress_interval_seconds default (Stack: 0.2)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _term(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------- processes


class Cleanup:
    """Everything started, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Any]] = []

    def push(self, name: str, fn: Any) -> None:
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


def kill_group(proc: subprocess.Popen, timeout: float = 10) -> None:
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


# --------------------------------------------------------------------------- bare scrapy


def run_bare_scrapy(
    site: str,
    roots: dict[str, int],
    pages: int,
    concurrency: int,
    items_mode: str,
    cleanup: Cleanup,
) -> dict:
    argv = [
        sys.executable,
        str(BENCH / "bare_scrapy.py"),
        "--site",
        site,
        "--pages",
        str(pages),
        "--concurrency",
        str(concurrency),
        "--items",
        items_mode,
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    cleanup.push("bare scrapy", lambda: kill_group(proc, 2))
    sampler = Sampler(lambda: {"bare_scrapy": proc.pid, **roots}, 0.2).start()
    try:
        out, err = proc.communicate(timeout=1800)
    finally:
        sampler.stop()
    total = time.perf_counter() - t0
    lines = [x for x in out.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bare scrapy failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["process_wall_s"] = round(total, 3)
    result["pages_per_s"] = round(result["pages"] / result["crawl_s"], 1)
    result["cpu_seconds"] = sampler.cpu_seconds()  # whole process, imports included
    result["peak_rss_mb"] = {k: round(v / 2**20, 1) for k, v in sampler.peak_rss.items()}
    result["system_cpu_busy"] = sampler.system_busy()
    result["foreign_cpu"] = sampler.foreign_cpu()
    if err.strip():
        result["stderr_tail"] = err.strip()[-500:]
    return result


# --------------------------------------------------------------------------- service


class Service:
    """redis-server, SecantusDB on disk and a Stack (gunicorn + one Celery scrapy worker)."""

    def __init__(self, workdir: Path, cleanup: Cleanup, site_pid: int):
        self.workdir = workdir
        self.site_pid = site_pid
        self.cleanup = cleanup
        self.session = requests.Session()
        self.headers: dict[str, str] = {}

    def start(self) -> None:
        log("starting redis-server and SecantusDB (on disk)")
        self.redis = embedded.start_redis(self.workdir / "redis")
        self.cleanup.push("redis", self.redis.stop)
        self.mongo = embedded.start_secantus(
            self.workdir / "secantus-data", log_path=str(self.workdir / "secantus.log")
        )
        self.cleanup.push("secantusdb", self.mongo.stop)
        stack_dir = self.workdir / "stack"
        stack_dir.mkdir(parents=True, exist_ok=True)
        self.stack = Stack(
            self.redis.url, self.mongo.url, f"bench_{uuid.uuid4().hex[:10]}", stack_dir
        )
        self.cleanup.push("stack", self.stack.stop)
        log("starting API (gunicorn) and one scrapy worker (concurrency 1)")
        import redis as redis_lib

        redis_lib.Redis.from_url(self.stack.redis_url).flushdb()
        self.stack.start_api()
        self.stack.start_worker(
            "scrapy", concurrency=1, PROGRESS_INTERVAL_SECONDS=PRODUCTION_PROGRESS_INTERVAL
        )
        self.headers = self.stack.register()

    def roots(self) -> dict[str, int]:
        return {
            "worker": self.stack.procs["worker-scrapy"].pid,
            "secantusdb": self.mongo.proc.pid,
            "api": self.stack.procs["api"].pid,
            "redis": self.redis.proc.pid,
            "site": self.site_pid,
        }

    def profile_targets(self) -> dict[str, int]:
        """The Celery child that runs the crawls, and the SecantusDB server."""
        procs = snapshot()
        parent = self.stack.procs["worker-scrapy"].pid
        children = [p for p in tree(parent, procs) if p != parent]
        return {"worker": children[0] if children else parent, "secantusdb": self.mongo.proc.pid}

    def post(self, spec: dict) -> dict:
        answer = self.session.post(
            self.stack.url("/jobs"), json=spec, headers=self.headers, timeout=30
        )
        if answer.status_code != 201:
            raise RuntimeError(f"POST /jobs answered {answer.status_code}: {answer.text[:500]}")
        return answer.json()

    def get(self, job_id: str) -> dict:
        answer = self.session.get(
            self.stack.url(f"/jobs/{job_id}"), headers=self.headers, timeout=30
        )
        answer.raise_for_status()
        return answer.json()

    def run_job(self, spec: dict, poll: float, timeout: float) -> dict:
        """Submit and poll until terminal: the job plus client-side timings."""
        t0 = time.perf_counter()
        wall0 = time.time()
        job = self.post(spec)
        t_posted = time.perf_counter()
        first_running = None
        polls = 0
        deadline = t0 + timeout
        while True:
            current = self.get(job["id"])
            polls += 1
            now = time.perf_counter()
            if current["status"] == "running" and first_running is None:
                first_running = now - t0
            if current["status"] in TERMINAL:
                break
            if now > deadline:
                raise RuntimeError(f"job {job['id']} not finished after {timeout} s: {current}")
            time.sleep(poll)
        elapsed = now - t0
        current["_bench"] = {
            "elapsed_s": elapsed,
            "post_s": t_posted - t0,
            "first_running_seen_s": first_running,
            "polls": polls,
            "server": server_phases(current, wall0, wall0 + elapsed),
        }
        return current

    def logs(self, job_id: str) -> list[dict]:
        answer = self.session.get(
            self.stack.url(f"/jobs/{job_id}/logs"), headers=self.headers, timeout=30
        )
        data = answer.json()
        return data.get("logs", data) if isinstance(data, dict) else data


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


def warm_up(svc: Service, site: str) -> float:
    log("warm-up: one one-page job (excluded: first job imports Scrapy, starts the reactor)")
    warm = svc.run_job(one_page_job(site, 1), poll=0.05, timeout=120)
    elapsed = warm["_bench"]["elapsed_s"] * 1000
    log(f"  warm-up job {warm['status']} in {elapsed:.0f} ms")
    return round(elapsed, 1)


def run_service_crawl(
    svc: Service,
    site: str,
    pages: int,
    concurrency: int,
    bare: dict | None,
    py_spy: str | None = None,
    workdir: Path | None = None,
) -> dict:
    spies: dict[str, tuple[Any, Path]] = {}
    if py_spy and workdir is not None:
        for name, pid in svc.profile_targets().items():
            out = workdir / f"py-spy-{name}.txt"
            spies[name] = (spy.start(py_spy, pid, out), out)
        time.sleep(1.0)  # let py-spy attach
    sampler = Sampler(svc.roots, interval=0.2).start()
    try:
        job = svc.run_job(service_job(site, pages, concurrency), poll=0.05, timeout=1800)
    finally:
        sampler.stop()
        for proc, _ in spies.values():
            spy.stop(proc)
    timing = job["_bench"]
    elapsed = timing["elapsed_s"]
    stored = items.count(svc.stack.database(), job["id"])
    result = {
        "job_id": job["id"],
        "status": job["status"],
        "error": job.get("error"),
        "pages": job.get("pages_crawled"),
        "items": job.get("items_scraped"),
        "items_failed": job.get("items_failed"),
        "results_in_db": stored,
        "post_to_completed_s": round(elapsed, 3),
        "pages_per_s": round((job.get("pages_crawled") or 0) / elapsed, 1),
        "duration_seconds_field": job.get("duration_seconds"),
        "server_phases": timing["server"],
        "cpu_seconds": sampler.cpu_seconds(),
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in sampler.peak_rss.items()},
        "system_cpu_busy": sampler.system_busy(),
        "foreign_cpu": sampler.foreign_cpu(),
    }
    if spies:
        result["py_spy"] = {name: spy.summarize(out) for name, (_, out) in spies.items()}
        print_profile(result["py_spy"])
    problems = []
    if job["status"] != "completed":
        problems.append(f"status {job['status']} ({job.get('error')})")
    if bare is not None:
        if result["pages"] != bare["pages"]:
            problems.append(f"pages_crawled {result['pages']} != bare scrapy {bare['pages']}")
        if result["items"] != bare["items"]:
            problems.append(f"items_scraped {result['items']} != bare scrapy {bare['items']}")
    if stored != result["items"]:
        problems.append(f"results in MongoDB {stored} != items_scraped {result['items']}")
    result["mismatch"] = problems
    if problems:
        bar = "!" * 78
        print(f"\n{bar}\nMISMATCH service vs bare scrapy:\n  " + "\n  ".join(problems), flush=True)
        with contextlib.suppress(Exception):
            for line in svc.logs(job["id"])[-10:]:
                print(f"  job log: {line}", flush=True)
        print(bar + "\n", flush=True)
    return result


def print_profile(profiles: dict) -> None:
    for name, prof in profiles.items():
        print(f"\n--- py-spy {name}: {prof.get('samples', 0)} samples (active threads only)")
        for label in ("threads", "inclusive", "self"):
            print(f"  {label}:")
            for frame, frac in prof.get(label, [])[:20]:
                print(f"    {frac:6.1%}  {frame}")
    print(flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def run_latency(
    svc: Service,
    site: str,
    pages: int,
    jobs: int,
    warmups: int = 2,
    py_spy: str | None = None,
    workdir: Path | None = None,
) -> dict:
    log(f"latency: {warmups} warm-up + {jobs} one-page jobs, one after another (poll 10 ms)")
    samples, phases, failed = [], [], []
    sampler: Sampler | None = None
    spies: dict[str, tuple[Any, Path]] = {}
    t_measured = 0.0
    for i in range(warmups + jobs):
        if i == warmups:
            if py_spy and workdir is not None:
                for name, pid in svc.profile_targets().items():
                    out = workdir / f"py-spy-latency-{name}.txt"
                    spies[name] = (spy.start(py_spy, pid, out), out)
                time.sleep(1.0)  # let py-spy attach
            sampler = Sampler(svc.roots, interval=0.5).start()
            t_measured = time.perf_counter()
        page = i % pages + 1
        job = svc.run_job(one_page_job(site, page), poll=0.01, timeout=120)
        if i < warmups:
            continue
        if job["status"] != "completed" or job.get("items_scraped") != 10:
            failed.append(
                {"id": job["id"], "status": job["status"], "items": job.get("items_scraped")}
            )
        samples.append(job["_bench"]["elapsed_s"] * 1000)
        phases.append({**job["_bench"]["server"], "post_ms": job["_bench"]["post_s"] * 1000})
    wall = time.perf_counter() - t_measured
    if sampler is not None:
        sampler.stop()
    for proc, _ in spies.values():
        spy.stop(proc)
    profiles = {name: spy.summarize(out) for name, (_, out) in spies.items()}
    if profiles:
        print_profile(profiles)
    if failed:
        print(f"\n!!! {len(failed)} one-page jobs did not complete with 10 items: {failed[:5]}")

    def med(key: str) -> float | None:
        values = [p[key] for p in phases if p.get(key) is not None]
        return round(statistics.median(values), 1) if values else None

    return {
        "n": len(samples),
        "warmups_excluded": warmups,
        "p50_ms": round(percentile(samples, 50), 1),
        "p95_ms": round(percentile(samples, 95), 1),
        "max_ms": round(max(samples), 1),
        "mean_ms": round(statistics.fmean(samples), 1),
        "median_phases_ms": {
            k: med(k)
            for k in (
                "post_ms",
                "post_to_created_ms",
                "queued_ms",
                "running_ms",
                "completed_to_seen_ms",
            )
        },
        "failed": failed,
        "wall_s": round(wall, 2),
        "cpu_seconds": sampler.cpu_seconds() if sampler else {},
        "foreign_cpu": sampler.foreign_cpu() if sampler else {},
        "samples_ms": [round(s, 1) for s in samples],
        **({"py_spy": profiles} if profiles else {}),
    }


# --------------------------------------------------------------------------- report


def median_run(runs: list[dict], key: str) -> dict:
    """The run with the median `key` (lower median for an even count)."""
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[(len(ordered) - 1) // 2]


def _foreign(run: dict) -> str:
    other = run.get("foreign_cpu") or {}
    text = f"other processes {other.get('total', 0):.1f} CPU s"
    if other.get("top"):
        text += " (" + ", ".join(f"{t['cmd'][:40]} {t['cpu_s']}" for t in other["top"]) + ")"
    return text


def noisy(run: dict) -> bool:
    """More than 10% of one core went to processes this benchmark did not start."""
    wall = run.get("crawl_s") or run.get("post_to_completed_s") or run.get("wall_s") or 1
    return (run.get("foreign_cpu") or {}).get("total", 0) > 0.1 * wall


def report(figures: dict) -> None:
    bare, svc, lat = figures.get("bare_scrapy"), figures.get("service"), figures.get("latency")
    targets = figures["targets"]
    print("\n" + "=" * 78)
    print(
        f"ScrapeMaster benchmark  ({figures['pages']} pages x 10 items, "
        f"concurrency {figures['concurrency']}, SecantusDB on disk, {os.cpu_count()} CPUs)"
    )
    print("=" * 78)
    if bare and svc:
        print("round  bare s  bare p/s   service s  service p/s  ratio  other-CPU s (bare/svc)")
        for k, (b, s) in enumerate(zip(bare["runs"], svc["runs"], strict=True)):
            flag = "  <- noisy" if noisy(b) or noisy(s) else ""
            print(
                f"{k + 1:5d}  {b['crawl_s']:6.2f}  {b['pages_per_s']:8.0f}   "
                f"{s['post_to_completed_s']:9.2f}  {s['pages_per_s']:11.0f}  "
                f"{s['pages_per_s'] / b['pages_per_s']:5.2f}  "
                f"{b['foreign_cpu']['total']:.1f}/{s['foreign_cpu']['total']:.1f}{flag}"
            )
        quiet = figures.get("ratio_quiet_rounds")
        print(
            "quiet rounds (other processes < 10% of one core): "
            + (f"median ratio {quiet:.2f}x" if quiet is not None else "none")
        )
        print("-" * 78)
    if bare:
        b = bare["median"]
        print(
            f"bare scrapy : {b['pages']} pages / {b['items']} items in {b['crawl_s']:.2f} s = "
            f"{b['pages_per_s']:.0f} pages/s (median of {len(bare['runs'])}; imports "
            f"{b['import_s']:.2f} s excluded; items {b['items_mode']})"
        )
        print(
            f"              CPU s: bare_scrapy {b['crawl_cpu_s']:.1f} (crawl only), site "
            f"{b['cpu_seconds']['site']:.1f}, idle stack {b.get('stack_idle_cpu_s', 0):.1f}; "
            f"{_foreign(b)}"
        )
    if svc:
        s = svc["median"]
        ratio = figures.get("ratio")
        ratio_text = ""
        if ratio is not None:
            ok = "OK" if ratio >= targets["ratio_min"] else "MISSED"
            ratio_text = f" ({ratio:.2f}x bare, target >= {targets['ratio_min']}x: {ok})"
        print(
            f"service     : {s['pages']} pages / {s['items']} items in "
            f"{s['post_to_completed_s']:.2f} s POST->completed = {s['pages_per_s']:.0f} pages/s"
            f"{ratio_text}"
        )
        ph = s["server_phases"]
        print(
            f"              created->started {ph.get('queued_ms')} ms, started->completed "
            f"{ph.get('running_ms')} ms, completed->seen {ph.get('completed_to_seen_ms')} ms"
        )
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in s["cpu_seconds"].items())
        rss = ", ".join(f"{k} {v:.0f}" for k, v in s["peak_rss_mb"].items())
        print(f"              CPU s: {cpu}; {_foreign(s)}")
        print(f"              peak RSS MB: {rss}")
        mismatches = [m for r in svc["runs"] for m in r["mismatch"]]
        if mismatches:
            print("              MISMATCH: " + "; ".join(mismatches))
    if lat:
        ok50 = "OK" if lat["p50_ms"] < targets["p50_ms"] else "MISSED"
        ok95 = "OK" if lat["p95_ms"] < targets["p95_ms"] else "MISSED"
        print(
            f"latency     : one-page job POST->completed p50 {lat['p50_ms']:.0f} ms ({ok50}), "
            f"p95 {lat['p95_ms']:.0f} ms ({ok95}), max {lat['max_ms']:.0f} ms, "
            f"mean {lat['mean_ms']:.0f} ms (n={lat['n']}, {lat['warmups_excluded']} warm-ups "
            "excluded)"
        )
        m = lat["median_phases_ms"]
        print(
            f"              medians: POST {m['post_ms']} ms, created->started {m['queued_ms']} ms,"
            f" started->completed {m['running_ms']} ms, completed->seen "
            f"{m['completed_to_seen_ms']} ms; {_foreign(lat)}"
        )
    if figures.get("playwright"):
        browser.report(figures["playwright"], targets["pw_ratio_min"], targets["pw_pss_max_mb"])
    noisy_runs = [r for part in (bare, svc) if part for r in part["runs"] if noisy(r)]
    if noisy_runs or (lat and noisy(lat)):
        print(
            "WARNING: other processes used significant CPU during measurements (see "
            "'other processes'); figures are pessimistic and noisy. Re-run on a quiet machine."
        )
    print(f"logs: {figures['workdir']}")
    print("=" * 78, flush=True)


# --------------------------------------------------------------------------- main


# the parts with options of their own: `--only NAME [options]` runs bench/MODULE.py's main
# (True: main takes its argv; False: it reads sys.argv itself)
PARTS: dict[str, tuple[str, bool]] = {
    "chaos": ("chaos", True),  # the chaos suite
    "events": ("events", True),  # live events and webhooks
    "changes": ("changes", True),  # schedules' change detection
    "auto": ("auto_cost", True),  # the cost of auto's probe
    "soak": ("soak", True),  # cost as the history grows
    "profile": ("profile_onepage", True),  # a one-page job's phases and round trips
    "charset": ("charset_cost", False),  # reading pages alike in both engines, browser cost
    "hang": ("hang", False),  # a SIGSTOPped worker replaced by the supervisor
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--only"] and argv[1:2] and argv[1] in PARTS:  # a part with its own options
        import importlib

        part = importlib.import_module(PARTS[argv[1]][0])
        sys.argv = [f"bench/{PARTS[argv[1]][0]}.py", *argv[2:]]
        return int(part.main(argv[2:]) if PARTS[argv[1]][1] else part.main() or 0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--latency-jobs", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument(
        "--only",
        choices=("scrapy", "latency", "playwright"),
        help="run one part; `--only " + "|".join(PARTS) + " [their options]` run the "
        "bench module of that name (PARTS)",
    )
    parser.add_argument(
        "--pw-pages", type=int, default=60, help="playwright: JS catalog pages per crawl"
    )
    parser.add_argument(
        "--pw-concurrency",
        default="1,2",
        help="playwright: comma-separated concurrencies (pages at once), each measured",
    )
    parser.add_argument("--pw-repeat", type=int, default=2, help="playwright: rounds per side")
    parser.add_argument(
        "--soak-jobs", type=int, default=100, help="playwright: jobs of the memory soak (0: none)"
    )
    parser.add_argument("--soak-pages", type=int, default=2, help="playwright: pages per soak job")
    parser.add_argument(
        "--repeat", type=int, default=3, help="crawls per side; the medians are compared"
    )
    parser.add_argument(
        "--bare-items",
        choices=("list", "yield"),
        default="list",
        help="bare scrapy: append items to a list (default) or yield them to Scrapy",
    )
    parser.add_argument(
        "--py-spy",
        metavar="PY_SPY",
        help="path of a py-spy binary: profile the worker and SecantusDB during the first "
        "service crawl and the latency jobs (collapsed stacks in the results directory); "
        "py-spy costs CPU, so the figures of such a run are not valid measurements",
    )
    args = parser.parse_args(argv)
    if args.pages < 1 or args.latency_jobs < 1 or args.repeat < 1:
        parser.error("--pages, --latency-jobs and --repeat must be positive")
    try:
        pw_concurrency = [int(c) for c in args.pw_concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error("--pw-concurrency must be comma-separated integers")
    if (
        not 1 <= args.pw_pages <= 100  # MAX_URLS_PER_JOB
        or not pw_concurrency
        or min(pw_concurrency) < 1
        or max(pw_concurrency) > 32
        or args.pw_repeat < 1
        or args.soak_jobs < 0
        or not 1 <= args.soak_pages <= 100
    ):
        parser.error("bad --pw-pages (1-100), --pw-concurrency (1-32), --pw-repeat or --soak-*")

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = BENCH / "results" / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {
        "pages": args.pages,
        "concurrency": args.concurrency,
        "repeat": args.repeat,
        "workdir": str(workdir),
        "targets": {
            "ratio_min": 0.7,
            "p50_ms": 300,
            "p95_ms": 600,
            "pw_ratio_min": 0.8,
            "pw_pss_max_mb": 1024,
        },
    }
    cleanup = Cleanup()
    cleanup.push(
        "data dirs",
        lambda: [
            shutil.rmtree(workdir / d, ignore_errors=True) for d in ("secantus-data", "redis")
        ],
    )
    crawl = args.only in (None, "scrapy")
    try:
        site_pages = args.pages
        if args.only in (None, "playwright"):
            site_pages = max(args.pages, args.pw_pages, args.soak_pages + 1)
        log(f"starting demo site: {site_pages} pages x 10 items (separate process)")
        site, site_proc = start_site(site_pages, cleanup)
        log(f"  {site}")
        svc = Service(workdir, cleanup, site_proc.pid)
        svc.start()
        if args.only != "playwright":
            figures["warmup_job_ms"] = warm_up(svc, site)
        if crawl:
            # Rounds of (bare scrapy, then service), so drift of this machine's speed hits both
            # sides alike; the medians are compared. The idle stack's CPU during the bare crawl
            # is reported (stack_idle_cpu_s).
            bare_runs: list[dict] = []
            svc_runs: list[dict] = []
            for k in range(args.repeat):
                log(f"round {k + 1}/{args.repeat}: bare scrapy, {args.pages} pages (fresh process)")
                run = run_bare_scrapy(
                    site, svc.roots(), args.pages, args.concurrency, args.bare_items, cleanup
                )
                run["stack_idle_cpu_s"] = round(
                    sum(
                        v for n, v in run["cpu_seconds"].items() if n not in ("bare_scrapy", "site")
                    ),
                    2,
                )
                log(
                    f"  {run['pages']} pages, {run['items']} items in {run['crawl_s']} s "
                    f"= {run['pages_per_s']} pages/s"
                )
                bare_runs.append(run)
                log(f"round {k + 1}/{args.repeat}: service, API -> Celery -> Scrapy -> MongoDB")
                spy = args.py_spy if k == 0 else None
                run = run_service_crawl(svc, site, args.pages, args.concurrency, run, spy, workdir)
                log(
                    f"  {run['status']}: {run['pages']} pages, {run['items']} items in "
                    f"{run['post_to_completed_s']} s = {run['pages_per_s']} pages/s"
                )
                svc_runs.append(run)
            bare_median = median_run(bare_runs, "pages_per_s")
            figures["bare_scrapy"] = {"median": bare_median, "runs": bare_runs}
            figures["service"] = {"median": median_run(svc_runs, "pages_per_s"), "runs": svc_runs}
            figures["ratio"] = round(
                figures["service"]["median"]["pages_per_s"] / bare_median["pages_per_s"], 3
            )
            clean = [
                s["pages_per_s"] / b["pages_per_s"]
                for b, s in zip(bare_runs, svc_runs, strict=True)
                if not noisy(b) and not noisy(s)
            ]
            figures["ratio_quiet_rounds"] = round(statistics.median(clean), 3) if clean else None
            figures["ratio_per_round"] = [
                round(s["pages_per_s"] / b["pages_per_s"], 3)
                for b, s in zip(bare_runs, svc_runs, strict=True)
            ]
        if args.only in (None, "latency"):
            figures["latency"] = run_latency(
                svc, site, args.pages, args.latency_jobs, py_spy=args.py_spy, workdir=workdir
            )
        if args.only in (None, "playwright"):
            figures["playwright"] = browser.run_part(
                svc,
                site,
                cleanup,
                pages=args.pw_pages,
                concurrencies=pw_concurrency,
                repeat=args.pw_repeat,
                soak_jobs=args.soak_jobs,
                soak_pages=args.soak_pages,
            )
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        cleanup.run()
        return 130
    finally:
        cleanup.run()
    report(figures)
    text = json.dumps(figures, indent=2, default=str) + "\n"
    (workdir / "figures.json").write_text(text)
    if args.json:
        Path(args.json).write_text(text)
        log(f"figures written to {args.json}")
    mismatch = any(r["mismatch"] for r in figures.get("service", {}).get("runs", []))
    failed = figures.get("latency", {}).get("failed")
    pw = figures.get("playwright") or {}
    pw_bad = pw.get("mismatch") or (pw.get("soak") or {}).get("failed_count")
    return 1 if mismatch or failed or pw_bad else 0


if __name__ == "__main__":
    sys.exit(main())
