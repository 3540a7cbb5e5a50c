"""The JavaScript catalog through the service against bare Playwright, and worker memory.

The catalog's pages rendered by the service and by bare Playwright at the same concurrency, and
the memory (PSS) of one Playwright worker with its Chromium over many jobs.

1. The stack (API, a scrapy worker, Redis, SecantusDB on disk) and a Celery worker on queue
   `playwright` (concurrency 1 process, PLAYWRIGHT_PAGES_PER_JOB = the largest concurrency
   measured, at least the default 2, so a job's `config.concurrency` is not capped). One warm-up
   one-page job launches its Chromium.
2. Rounds, for each concurrency C (default 1 and 2): bare Playwright (bench/bare_playwright.py,
   fresh process, warm-up page excluded) renders N pages of /js/catalog/ given as N start URLs
   with C tabs; then the service renders the same N start URLs in one job with
   config.concurrency = C, timed POST /jobs -> completed. Pages and items must match.
3. Soak: `--soak-jobs` small jobs one after another (`--soak-pages` start URLs each, the
   default concurrency of PLAYWRIGHT_PAGES_PER_JOB=2); PSS of the worker tree after every job.

PSS is the sum of /proc/PID/smaps_rollup `Pss` over the worker's process tree (Celery parent
and child, Playwright's node driver, Chromium and its helpers) plus the processes carrying the
browser pool's marker for that worker (chrome_crashpad_handler re-parents itself to init).
The bare side is measured the same way (its processes carry a marker of their own).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import threading
import time
from typing import Any

from bench.common import (
    Cleanup,
    Sampler,
    Service,
    js_urls,
    log,
    median_run,
    noisy,
    ratio,
    result_line,
    run_program,
    snapshot,
    stack_of,
    start_site,
    tree,
)

QUEUE = "playwright"
WORKER = "worker-playwright"
DEFAULT_PAGES_PER_JOB = 2  # shared.settings.Settings.playwright_pages_per_job
POOL_MARKER = "SCRAPEMASTER_BROWSER="  # scrapers.browser_pool.MARKER: "<name>=<pid>-<hex>/<n>/"
BARE_MARKER = "SCRAPEMASTER_BENCH_BARE"
SELECTORS = {  # tests/e2e/test_browser_jobs.py
    "sku": "./@data-sku",
    "title": "h2.product-title::text",
    "price": "span.price::text",
    "stock": "p.stock::text",
}
ITEM_SELECTOR = "div.product"
MB = 1024  # smaps_rollup counts kB
RATIO_MIN = 0.8  # service pages/s ÷ bare Playwright's, reported as OK / MISSED
PSS_MAX_MB = 1024  # a worker with its Chromium


def playwright_job(urls: list[str], concurrency: int) -> dict:
    return {
        "urls": urls,
        "engine": "playwright",
        "selectors": SELECTORS,
        "config": {
            "item_selector": ITEM_SELECTOR,
            "follow_links": False,
            "max_pages": len(urls),
            "concurrency": concurrency,
            "obey_robots": True,  # the default; the bare script fetches robots.txt too
            "wait_until": "load",  # the default
            "timeout_seconds": 900,
        },
    }


# --------------------------------------------------------------------------- memory (PSS)


def rollup(pid: int) -> dict[str, int] | None:
    """Pss, Pss_Anon, Pss_File, Pss_Shmem (kB) of `pid` from /proc/PID/smaps_rollup."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("Pss", "Pss_Anon", "Pss_File", "Pss_Shmem"):
                    out[key] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return out if "Pss" in out else None


def _environ_markers(prefix: str) -> dict[int, str]:
    """pid -> value of its first environment entry starting with `prefix` (readable ones)."""
    found = {}
    needle = prefix.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        if needle not in raw:
            continue
        for entry in raw.split(b"\0"):
            if entry.startswith(needle):
                found[int(name)] = entry[len(needle) :].decode(errors="replace")
                break
    return found


def _kind(pid: int) -> str:
    try:
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return "other"
    if "chrom" in exe:  # chromium, chrome_crashpad_handler
        return "chromium"
    if exe == "node":
        return "driver"
    if exe.startswith("python"):
        return "python"
    return "other"


def worker_pids(root: int) -> list[int]:
    """The Celery worker tree plus every process marked by a browser pool of that tree."""
    pids = set(tree(root, snapshot()))
    for pid, value in _environ_markers(POOL_MARKER).items():
        owner = value.split("-", 1)[0]
        if owner.isdigit() and int(owner) in pids:
            pids.add(pid)
    return sorted(pids)


def bare_pids(root: int, token: str) -> list[int]:
    pids = set(tree(root, snapshot()))
    pids.update(p for p, v in _environ_markers(BARE_MARKER + "=").items() if v == token)
    return sorted(pids)


KINDS = ("python", "driver", "chromium", "other")


def measure(pids: list[int]) -> dict[str, int]:
    """PSS in kB: `total`, per kind of process, anonymous memory (`anon`, `anon_<kind>`),
    file-backed (`file`) and shared memory (`shmem`)."""
    out = dict.fromkeys([*KINDS, *(f"anon_{k}" for k in KINDS)], 0)
    out.update(total=0, anon=0, file=0, shmem=0)
    for pid in pids:
        r = rollup(pid)
        if r is None:
            continue
        kind = _kind(pid)
        out[kind] += r["Pss"]
        out["total"] += r["Pss"]
        out[f"anon_{kind}"] += r.get("Pss_Anon", 0)
        out["anon"] += r.get("Pss_Anon", 0)
        out["file"] += r.get("Pss_File", 0)
        out["shmem"] += r.get("Pss_Shmem", 0)
    out["processes"] = len(pids)
    return out


class PssSampler:
    """PSS of a set of processes every `interval` s in a thread: the peak, with its breakdown."""

    def __init__(self, pids: Any, interval: float = 1.0):
        self.pids = pids
        self.interval = interval
        self.peak: dict[str, int] = {"total": 0}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pss", daemon=True)

    def sample(self) -> dict[str, int]:
        now = measure(self.pids())
        self.samples += 1
        if now["total"] > self.peak["total"]:
            self.peak = now
        return now

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> PssSampler:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> PssSampler:
        self._stop.set()
        self._thread.join()
        self.sample()
        return self


def mib(kb: float) -> float:
    return round(kb / MB, 1)


# --------------------------------------------------------------------------- bare playwright


def run_bare(site: str, pages: int, concurrency: int, cleanup: Cleanup, roots: dict) -> dict:
    token = secrets.token_hex(6)
    argv = ["--site", site, "--pages", str(pages), "--concurrency", str(concurrency)]
    t0 = time.perf_counter()
    proc = run_program("bench.bare_playwright", argv, cleanup, env={BARE_MARKER: token})
    sampler = Sampler(lambda: {"bare_playwright": proc.pid, **roots}, 0.5).start()
    pss = PssSampler(lambda: bare_pids(proc.pid, token), 1.0).start()
    try:
        out, err = proc.communicate(timeout=1800)
    finally:
        pss.stop()
        sampler.stop()
    result = result_line(proc, out, err)
    result["pages_per_s"] = round(result["pages"] / result["crawl_s"], 2)
    result["process_wall_s"] = round(time.perf_counter() - t0, 3)  # the samplers' window
    result["peak_pss_mb"] = {k: mib(v) if k != "processes" else v for k, v in pss.peak.items()}
    result["cpu_seconds"] = sampler.cpu_seconds()  # live processes only (see report)
    result["foreign_cpu"] = sampler.foreign_cpu()
    result["system_cpu_busy"] = sampler.system_busy()
    return result


# --------------------------------------------------------------------------- service


def start_worker(svc: Service, pages_per_job: int) -> int:
    log(f"starting one playwright worker (concurrency 1, PLAYWRIGHT_PAGES_PER_JOB={pages_per_job})")
    proc = svc.stack.start_worker(
        QUEUE,
        concurrency=1,
        PLAYWRIGHT_PAGES_PER_JOB=str(pages_per_job),
        PROGRESS_INTERVAL_SECONDS="0.5",  # production default (Stack: 0.2)
    )
    return proc.pid


def run_service(
    svc: Service, site: str, pages: int, concurrency: int, bare: dict | None, poll: float = 0.05
) -> dict:
    root = svc.stack.procs[WORKER].pid
    roots = {**svc.roots(), "worker_playwright": root}
    sampler = Sampler(lambda: roots, 0.5).start()
    pss = PssSampler(lambda: worker_pids(root), 1.0).start()
    try:
        job = svc.run_job(
            playwright_job(js_urls(site, 1, pages), concurrency), poll=poll, timeout=1800
        )
    finally:
        pss.stop()
        sampler.stop()
    from shared import items

    elapsed = job["_bench"]["elapsed_s"]
    stored = items.count(svc.stack.database(), job["id"])
    result = {
        "job_id": job["id"],
        "status": job["status"],
        "error": job.get("error"),
        "concurrency": concurrency,
        "pages": job.get("pages_crawled"),
        "items": job.get("items_scraped"),
        "results_in_db": stored,
        "post_to_completed_s": round(elapsed, 3),
        "poll_s": poll,
        "pages_per_s": round((job.get("pages_crawled") or 0) / elapsed, 2),
        "server_phases": job["_bench"]["server"],
        "peak_pss_mb": {k: mib(v) if k != "processes" else v for k, v in pss.peak.items()},
        "cpu_seconds": sampler.cpu_seconds(),  # live processes only (see report)
        "foreign_cpu": sampler.foreign_cpu(),
        "system_cpu_busy": sampler.system_busy(),
    }
    problems = []
    if job["status"] != "completed":
        problems.append(f"status {job['status']} ({job.get('error')})")
    if bare is not None:
        if result["pages"] != bare["pages"]:
            problems.append(f"pages_crawled {result['pages']} != bare {bare['pages']}")
        if result["items"] != bare["items"]:
            problems.append(f"items_scraped {result['items']} != bare {bare['items']}")
    if stored != result["items"]:
        problems.append(f"results in MongoDB {stored} != items_scraped {result['items']}")
    result["mismatch"] = problems
    if problems:
        print("!!! MISMATCH playwright service vs bare: " + "; ".join(problems), flush=True)
    return result


def browser_pid(pids: list[int]) -> int | None:
    """The Chromium browser process (the one whose parent is the node driver)."""
    procs = snapshot()
    for pid in pids:
        parent = procs.get(pid, (0, 0, 0))[0]
        if _kind(pid) == "chromium" and parent in procs and _kind(parent) == "driver":
            return pid
    return None


def soak(svc: Service, site: str, catalog_pages: int, jobs: int, pages_per_job: int) -> dict:
    """`jobs` small jobs one after another; PSS of the worker tree after each (worker idle)."""
    log(
        f"soak: {jobs} jobs x {pages_per_job} pages at the default concurrency "
        f"({DEFAULT_PAGES_PER_JOB} pages at once), PSS after every job"
    )
    root = svc.stack.procs[WORKER].pid
    pss = PssSampler(lambda: worker_pids(root), 0.5).start()
    after: list[dict[str, int]] = []
    elapsed: list[float] = []
    phases: list[dict] = []
    browsers: list[int | None] = []
    failed: list[dict] = []
    t0 = time.perf_counter()
    try:
        for k in range(jobs):
            first = (k * pages_per_job) % max(1, catalog_pages - pages_per_job) + 1
            spec = playwright_job(js_urls(site, first, pages_per_job), DEFAULT_PAGES_PER_JOB)
            job = svc.run_job(spec, poll=0.02, timeout=300)
            if job["status"] != "completed" or job.get("items_scraped") != 10 * pages_per_job:
                entry = {
                    "id": job["id"],
                    "status": job["status"],
                    "pages": job.get("pages_crawled"),
                    "items": job.get("items_scraped"),
                    "urls": spec["urls"],
                }
                with contextlib.suppress(Exception):
                    entry["logs"] = [
                        f"{x.get('level')} {x.get('message')}" for x in svc.logs(job["id"])
                    ][-6:]
                failed.append(entry)
                log(f"  !!! soak job {k + 1}: {entry}")
            elapsed.append(job["_bench"]["elapsed_s"])
            phases.append(job["_bench"]["server"])
            pids = worker_pids(root)
            now = measure(pids)
            after.append(now)
            if now["total"] > pss.peak["total"]:
                pss.peak = now
            browsers.append(browser_pid(pids))
            if (k + 1) % max(1, jobs // 5) == 0:
                log(f"  {k + 1}/{jobs} jobs, worker PSS {mib(after[-1]['total']):.0f} MiB")
    finally:
        pss.stop()
    wall = time.perf_counter() - t0

    n = len(after)
    w = max(1, n // 10)
    mid = n // 2

    def window(lo: int, hi: int, key: str = "total") -> float:
        values = [a[key] for a in after[max(0, lo) : hi]]
        return mib(statistics.median(values)) if values else 0.0

    def slope(key: str, first: int = 0) -> float | None:
        """Least-squares slope of post-job PSS, MiB per 100 jobs."""
        xs = list(range(first, n))
        if len(xs) < 10:
            return None
        ys = [after[i][key] for i in xs]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        den = sum((x - mx) ** 2 for x in xs)
        return round(
            sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 100 / MB, 1
        )

    last_launch = max((i for i in range(n) if browsers[i] != browsers[-1]), default=-1) + 1
    keys = ("total", "anon", "python", "driver", "chromium", "anon_python", "anon_driver",
            "anon_chromium")  # fmt: skip
    relaunches = sum(1 for i in range(1, n) if browsers[i] != browsers[i - 1])
    return {
        "jobs": n,
        "pages_per_job": pages_per_job,
        "failed": failed[:5],
        "failed_count": len(failed),
        "wall_s": round(wall, 1),
        "job_p50_ms": round(statistics.median(elapsed) * 1000, 1) if elapsed else None,
        "job_median_phases_ms": {
            key: round(statistics.median(v), 1)
            for key in ("queued_ms", "running_ms", "completed_to_seen_ms")
            if (v := [p[key] for p in phases if p.get(key) is not None])
        },
        "pss_after_job_mb": {
            "start": mib(after[0]["total"]) if after else None,
            "middle": mib(after[mid]["total"]) if after else None,
            "end": mib(after[-1]["total"]) if after else None,
            "first_10pct_median": window(0, w),
            "middle_10pct_median": window(mid - w // 2, mid - w // 2 + w),
            "last_10pct_median": window(n - w, n),
        },
        "by_kind_mb": {  # medians of the first / middle / last 10% of jobs, slope per 100 jobs
            k: {
                "first": window(0, w, k),
                "middle": window(mid - w // 2, mid - w // 2 + w, k),
                "last": window(n - w, n, k),
                "slope_per_100_jobs": slope(k),
            }
            for k in keys
        },
        "slope_total_since_last_launch_mb_per_100_jobs": slope("total", last_launch),
        "breakdown_end_mb": {k: mib(v) for k, v in after[-1].items() if k != "processes"}
        if after
        else {},
        "peak_pss_mb": {k: mib(v) if k != "processes" else v for k, v in pss.peak.items()},
        "browser_relaunches": relaunches,
        "relaunch_after_jobs": [i for i in range(1, n) if browsers[i] != browsers[i - 1]],
        "series_mb": {k: [mib(a[k]) for a in after] for k in keys},
    }


# --------------------------------------------------------------------------- the part


def measure_all(
    svc: Service,
    site: str,
    cleanup: Cleanup,
    pages: int,
    concurrencies: list[int],
    repeat: int,
    soak_jobs: int,
    soak_pages: int,
) -> dict:
    pages_per_job = max([DEFAULT_PAGES_PER_JOB, *concurrencies])
    start_worker(svc, pages_per_job)
    cleanup.push("playwright worker", lambda: svc.stack.stop_process(WORKER))
    root = svc.stack.procs[WORKER].pid
    idle = measure(worker_pids(root))
    log(f"  idle worker before any job (no browser yet): PSS {mib(idle['total']):.0f} MiB")
    log("warm-up: one one-page playwright job (launches the worker's Chromium)")
    warm = svc.run_job(playwright_job(js_urls(site, 1, 1), 1), poll=0.05, timeout=180)
    log(f"  warm-up job {warm['status']} in {warm['_bench']['elapsed_s'] * 1000:.0f} ms")
    warm_pss = measure(worker_pids(root))
    figures: dict[str, Any] = {
        "pages": pages,
        "concurrencies": concurrencies,
        "repeat": repeat,
        "worker_pages_per_job": pages_per_job,
        "warmup_job_ms": round(warm["_bench"]["elapsed_s"] * 1000, 1),
        "worker_idle_pss_mb": mib(idle["total"]),
        "worker_warm_pss_mb": {k: mib(v) for k, v in warm_pss.items() if k != "processes"},
        "by_concurrency": {},
    }
    runs: dict[int, dict[str, list[dict]]] = {c: {"bare": [], "service": []} for c in concurrencies}
    for k in range(repeat):
        for c in concurrencies:
            log(f"round {k + 1}/{repeat}, concurrency {c}: bare Playwright, {pages} pages")
            bare = run_bare(site, pages, c, cleanup, {**svc.roots(), "worker_playwright": root})
            log(
                f"  {bare['pages']} pages, {bare['items']} items in {bare['crawl_s']} s "
                f"= {bare['pages_per_s']} pages/s; peak PSS {bare['peak_pss_mb']['total']} MiB"
            )
            runs[c]["bare"].append(bare)
            log(f"round {k + 1}/{repeat}, concurrency {c}: service, one playwright job")
            svc_run = run_service(svc, site, pages, c, bare)
            log(
                f"  {svc_run['status']}: {svc_run['pages']} pages, {svc_run['items']} items in "
                f"{svc_run['post_to_completed_s']} s = {svc_run['pages_per_s']} pages/s; "
                f"peak PSS {svc_run['peak_pss_mb']['total']} MiB"
            )
            runs[c]["service"].append(svc_run)
    for c in concurrencies:
        bare_runs, svc_runs = runs[c]["bare"], runs[c]["service"]
        b, s = median_run(bare_runs), median_run(svc_runs)
        per_round = [
            round(sv["pages_per_s"] / br["pages_per_s"], 3)
            for br, sv in zip(bare_runs, svc_runs, strict=True)
        ]
        figures["by_concurrency"][str(c)] = {
            "bare": {"median": b, "runs": bare_runs},
            "service": {"median": s, "runs": svc_runs},
            "ratio": round(s["pages_per_s"] / b["pages_per_s"], 3),
            "ratio_best": round(
                max(r["pages_per_s"] for r in svc_runs) / max(r["pages_per_s"] for r in bare_runs),
                3,
            ),
            "ratio_per_round": per_round,
        }
    if soak_jobs > 0:
        figures["soak"] = soak(svc, site, pages, soak_jobs, soak_pages)
    peaks = [r["peak_pss_mb"]["total"] for c in concurrencies for r in runs[c]["service"]]
    if "soak" in figures:
        peaks.append(figures["soak"]["peak_pss_mb"]["total"])
    figures["worker_peak_pss_mb"] = max(peaks) if peaks else None
    figures["mismatch"] = [
        m for c in concurrencies for r in runs[c]["service"] for m in r["mismatch"]
    ]
    return figures


def report(fig: dict, ratio_min: float = RATIO_MIN, pss_max_mb: float = PSS_MAX_MB) -> None:
    print("-" * 78)
    print(
        f"playwright  : {fig['pages']} JS catalog pages (given as start URLs) x 10 items; "
        f"worker PLAYWRIGHT_PAGES_PER_JOB={fig['worker_pages_per_job']}"
    )
    print("conc round  bare s  bare p/s  service s  service p/s  ratio  other-CPU s (bare/svc)")
    for c, part in fig["by_concurrency"].items():
        for k, (b, s) in enumerate(zip(part["bare"]["runs"], part["service"]["runs"], strict=True)):
            flag = (
                "  <- noisy"
                if noisy(b, b.get("process_wall_s", b["crawl_s"]))
                or noisy(s, s["post_to_completed_s"])
                else ""
            )
            print(
                f"{c:>4} {k + 1:5d}  {b['crawl_s']:6.2f}  {b['pages_per_s']:8.2f}  "
                f"{s['post_to_completed_s']:9.2f}  {s['pages_per_s']:11.2f}  "
                f"{s['pages_per_s'] / b['pages_per_s']:5.2f}  "
                f"{b['foreign_cpu']['total']:.1f}/{s['foreign_cpu']['total']:.1f}{flag}"
            )
    print(
        "              (other-CPU: processes this benchmark did not start, during the whole bare "
        "process / the service job; PSS: smaps_rollup over the process tree incl. Chromium)"
    )
    for c, part in fig["by_concurrency"].items():
        b, s = part["bare"]["median"], part["service"]["median"]
        ok = "OK" if part["ratio"] >= ratio_min else "MISSED"
        print(
            f"concurrency {c}: bare {b['pages_per_s']:.2f} pages/s, service "
            f"{s['pages_per_s']:.2f} pages/s = {part['ratio']:.2f}x (target >= {ratio_min}x: "
            f"{ok}; best-vs-best {part['ratio_best']:.2f}x); peak PSS bare "
            f"{b['peak_pss_mb']['total']:.0f} MiB, service worker "
            f"{s['peak_pss_mb']['total']:.0f} MiB"
        )
        ph = b.get("phase_median_ms", {})
        if ph:
            print(
                "              bare per-page medians ms: "
                + ", ".join(f"{k} {v}" for k, v in ph.items())
            )
        print(
            f"              service created->started {s['server_phases'].get('queued_ms')} ms, "
            f"started->completed {s['server_phases'].get('running_ms')} ms"
        )
        for side, run in (("bare", b), ("service", s)):
            cpu = run.get("cpu_seconds") or {}
            print(
                f"              CPU s during the {side} run (approx.): "
                + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items() if v >= 0.05)
                + f"; other processes {run['foreign_cpu']['total']:.1f}"
            )
    peak = fig.get("worker_peak_pss_mb")
    if peak is not None:
        ok = "OK" if peak < pss_max_mb else "MISSED"
        print(
            f"worker PSS  : idle (no browser) {fig['worker_idle_pss_mb']:.0f} MiB, warm "
            f"{fig['worker_warm_pss_mb']['total']:.0f} MiB; peak over all jobs {peak:.0f} MiB "
            f"(target < {pss_max_mb:.0f}: {ok})"
        )
    sk = fig.get("soak")
    if sk:
        a = sk["pss_after_job_mb"]
        print(
            f"soak        : {sk['jobs']} jobs x {sk['pages_per_job']} pages in {sk['wall_s']} s "
            f"(job p50 {sk['job_p50_ms']:.0f} ms, started->completed "
            f"{sk['job_median_phases_ms'].get('running_ms')} ms; {sk['failed_count']} failed; "
            f"browser relaunches {sk['browser_relaunches']})"
        )
        print(
            f"              PSS after job start/middle/end {a['start']:.0f}/{a['middle']:.0f}/"
            f"{a['end']:.0f} MiB; peak during the soak {sk['peak_pss_mb']['total']:.0f} MiB"
        )
        print("              medians of first/middle/last 10% of jobs, MiB (slope per 100 jobs):")
        for key, label in (
            ("total", "all"),
            ("anon", "anonymous"),
            ("python", "Celery (python)"),
            ("driver", "node driver"),
            ("chromium", "Chromium"),
        ):
            k = sk["by_kind_mb"][key]
            slope = k["slope_per_100_jobs"]
            print(
                f"                {label:16s} {k['first']:6.0f} {k['middle']:6.0f} {k['last']:6.0f}"
                + (f"  ({slope:+.1f})" if slope is not None else "")
            )
        if sk["jobs"] < 300:
            print(
                "              (a short soak's slope includes one-time steps after warm-up and "
                "node's GC sawtooth; --soak-jobs 500 shows the trend)"
            )
    if fig.get("mismatch"):
        print("              MISMATCH: " + "; ".join(fig["mismatch"]))


# --------------------------------------------------------------------------- the subcommand

TITLE = "JavaScript pages against bare Playwright"
ABOUT = (
    "The JavaScript catalog (each page renders its 10 items with a script) given as start "
    "URLs, rendered by one Playwright job through the service (every request through the "
    "target policy's egress proxy) and by a bare async Playwright script on the same Debian "
    "Chromium with the same launch arguments, resource blocking and wait strategy (the bare "
    "side has no egress proxy), at the same concurrency, in rounds; pages and items must match. "
    "Memory is PSS over the worker's process tree with its Chromium; the soak runs small jobs "
    "one after another and reads the worker's PSS after each."
)
LABELS = {
    "pages": "JavaScript catalog pages a crawl",
    "rounds": "rounds (bare, then service) per concurrency",
    "bare_peak_pss_mib": "bare script's peak memory (PSS), MiB",
    "service_worker_peak_pss_mib": "one Playwright worker with its Chromium, peak PSS, MiB",
    "soak_jobs": "soak: jobs of 2 pages, one after another",
    "soak_pss_after_job_mib": "soak: worker PSS after a job, start / middle / end, MiB",
    "soak_peak_pss_mib": "soak: peak PSS, MiB",
    "soak_chromium_pss_mib": "soak: Chromium's share, first / last 10% of jobs, MiB",
    "soak_browser_relaunches": "soak: Chromium relaunches",
    **{
        f"{side}_c{c}_{key}": f"{who}, concurrency {c}, {what}"
        for c in (1, 2, 4, 8)
        for side, who in (("bare", "bare Playwright"), ("service", "through the service"))
        for key, what in (("pages_per_s", "pages/s (median)"), ("best_pages_per_s", "best round"))
    },
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pages", type=int, default=60, help="JS catalog pages a crawl (1-100)")
    parser.add_argument(
        "--concurrency", default="1,2", help="comma-separated pages at once, each measured"
    )
    parser.add_argument("--repeat", type=int, default=2, help="rounds per concurrency")
    parser.add_argument("--soak-jobs", type=int, default=100, help="jobs of the soak (0: none)")
    parser.add_argument("--soak-pages", type=int, default=2, help="pages per soak job")


def run(args: argparse.Namespace) -> dict[str, Any]:
    try:
        concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        raise SystemExit("--concurrency must be comma-separated integers") from None
    if (
        not 1 <= args.pages <= 100  # MAX_URLS_PER_JOB
        or not concurrencies
        or not 1 <= min(concurrencies) <= max(concurrencies) <= 32
        or args.repeat < 1
        or args.soak_jobs < 0
        or not 1 <= args.soak_pages <= 100
    ):
        raise SystemExit("bad --pages (1-100), --concurrency (1-32), --repeat or --soak-*")
    with Cleanup() as cleanup, stack_of(args.results_dir) as stack:
        site, site_proc = start_site(max(args.pages, args.soak_pages + 1), cleanup)
        svc = Service(stack, site_proc.pid).start()
        fig = measure_all(
            svc,
            site,
            cleanup,
            pages=args.pages,
            concurrencies=concurrencies,
            repeat=args.repeat,
            soak_jobs=args.soak_jobs,
            soak_pages=args.soak_pages,
        )
    report(fig)
    figures: dict[str, Any] = {"pages": args.pages, "rounds": args.repeat}
    ratios: dict[str, float | None] = {}
    for c, part in fig["by_concurrency"].items():
        bare, served = part["bare"], part["service"]
        for side, runs in (("bare", bare), ("service", served)):
            figures[f"{side}_c{c}_pages_per_s"] = runs["median"]["pages_per_s"]
            figures[f"{side}_c{c}_best_pages_per_s"] = max(r["pages_per_s"] for r in runs["runs"])
        for key in ("pages_per_s", "best_pages_per_s"):
            ratios[f"service_c{c}_{key} / bare_c{c}_{key}"] = ratio(
                figures[f"service_c{c}_{key}"], figures[f"bare_c{c}_{key}"]
            )
    bare_peak = max(
        r["peak_pss_mb"]["total"] for p in fig["by_concurrency"].values() for r in p["bare"]["runs"]
    )
    figures["bare_peak_pss_mib"] = bare_peak
    figures["service_worker_peak_pss_mib"] = fig["worker_peak_pss_mb"]
    ratios["service_worker_peak_pss_mib / bare_peak_pss_mib"] = ratio(
        fig["worker_peak_pss_mb"], bare_peak
    )
    sk = fig.get("soak")
    if sk:
        after = sk["pss_after_job_mb"]
        chromium = sk["by_kind_mb"]["chromium"]
        figures.update(
            soak_jobs=sk["jobs"],
            soak_pss_after_job_mib=[after["start"], after["middle"], after["end"]],
            soak_peak_pss_mib=sk["peak_pss_mb"]["total"],
            soak_chromium_pss_mib=[chromium["first"], chromium["last"]],
            soak_browser_relaunches=sk["browser_relaunches"],
        )
    failed = (sk or {}).get("failed_count", 0)
    return {
        "figures": figures,
        "ratios": ratios,
        "notes": [f"MISMATCH: {m}" for m in fig["mismatch"]]
        + ([f"{failed} soak jobs failed"] if failed else []),
        "ok": not fig["mismatch"] and not failed,
        "details": fig,
    }
