"""One-page jobs: each timed from POST /jobs to `completed` one after another, then a burst.

The demo site in its own process; redis-server, SecantusDB on disk, gunicorn (API) and one
Celery worker per engine measured (concurrency 1; a playwright worker with its Chromium when
`--engines` names it). After two warm-up jobs, `--jobs` one-page jobs (10 items each) run one
after another, each polled every 10 ms: the p50, p95 and max, and the median of where the time
went (from the job's own timestamps). Then `--burst` one-page jobs are submitted at once and
waited for: jobs/s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bench.common import (
    Cleanup,
    Sampler,
    Service,
    js_urls,
    log,
    median_ms,
    one_page_job,
    percentile,
    stack_of,
    start_site,
)

TITLE = "One-page jobs"
ABOUT = (
    "A one-page job (10 items, no link following) timed from `POST /jobs` until the client "
    "sees `completed` (polled every 10 ms), one after another after two warm-up jobs; then a "
    "burst of one-page jobs submitted at once, in jobs/s. One worker process per engine, the "
    "store empty at the start."
)
PHASES = ("post_ms", "post_to_created_ms", "queued_ms", "running_ms", "completed_to_seen_ms")
LABELS = {
    "jobs": "jobs timed (one after another)",
    "warmups": "warm-up jobs, not counted",
    "burst": "jobs in the burst",
    **{
        f"{engine}_{key}": f"`{engine}` one-page job, {what}"
        for engine in ("scrapy", "playwright")
        for key, what in (
            ("p50_ms", "POST → `completed` p50, ms"),
            ("p95_ms", "p95, ms"),
            ("max_ms", "max, ms"),
            ("median_phases_ms", "median phases, ms"),
            ("burst_jobs_per_s", "burst, jobs/s"),
        )
    },
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=40, help="one-page jobs timed one by one")
    parser.add_argument("--burst", type=int, default=50, help="one-page jobs at once (0: none)")
    parser.add_argument(
        "--engines", default="scrapy", help="comma-separated engines measured: scrapy, playwright"
    )


def spec_for(engine: str, site: str, page: int) -> dict:
    if engine == "playwright":
        from bench.browser import playwright_job

        return playwright_job(js_urls(site, page, 1), 1)
    return one_page_job(site, page)


def one_by_one(svc: Service, engine: str, site: str, jobs: int, warmups: int = 2) -> dict:
    log(f"{engine}: {warmups} warm-up + {jobs} one-page jobs, one after another (poll 10 ms)")
    samples: list[float] = []
    phases: list[dict] = []
    failed: list[dict] = []
    sampler: Sampler | None = None
    for i in range(warmups + jobs):
        if i == warmups:
            sampler = Sampler(svc.roots, interval=0.5).start()
        job = svc.run_job(spec_for(engine, site, i % 10 + 1), poll=0.01, timeout=180)
        if i < warmups:
            continue
        if job["status"] != "completed" or job.get("items_scraped") != 10:
            failed.append({"id": job["id"], "status": job["status"], "error": job.get("error")})
        samples.append(job["_bench"]["elapsed_s"] * 1000)
        phases.append({**job["_bench"]["server"], "post_ms": job["_bench"]["post_s"] * 1000})
    if sampler is not None:
        sampler.stop()
    if failed:
        log(f"!!! {len(failed)} one-page jobs did not complete with 10 items: {failed[:5]}")
    return {
        "p50_ms": round(percentile(samples, 50), 1),
        "p95_ms": round(percentile(samples, 95), 1),
        "max_ms": round(max(samples), 1),
        "mean_ms": round(statistics.fmean(samples), 1),
        "median_phases_ms": {
            k: median_ms([p[k] for p in phases if p.get(k) is not None]) for k in PHASES
        },
        "failed": failed,
        "samples_ms": [round(s, 1) for s in samples],
        "foreign_cpu": sampler.foreign_cpu() if sampler else {},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if args.jobs < 1 or args.burst < 0 or not set(engines) <= {"scrapy", "playwright"}:
        raise SystemExit("--jobs must be positive, --burst >= 0, --engines scrapy,playwright")
    figures: dict[str, Any] = {"jobs": args.jobs, "warmups": 2, "burst": args.burst}
    details: dict[str, Any] = {}
    with Cleanup() as cleanup, stack_of(args.results_dir) as stack:
        site, site_proc = start_site(10, cleanup)
        svc = Service(stack, site_proc.pid).start()
        if "playwright" in engines:
            from bench.browser import start_worker

            start_worker(svc, 2)
        for engine in engines:
            part = one_by_one(svc, engine, site, args.jobs)
            details[engine] = part
            for key in ("p50_ms", "p95_ms", "max_ms", "median_phases_ms"):
                figures[f"{engine}_{key}"] = part[key]
            if args.burst:
                log(f"{engine}: a burst of {args.burst} one-page jobs")
                specs = [spec_for(engine, site, i % 10 + 1) for i in range(args.burst)]
                started = time.perf_counter()
                rate = svc.burst(specs)
                log(f"  {rate:.1f} jobs/s ({time.perf_counter() - started:.1f} s)")
                figures[f"{engine}_burst_jobs_per_s"] = round(rate, 1)
    failed = [f for part in details.values() for f in part["failed"]]
    return {
        "figures": figures,
        "ratios": {},
        "notes": [f"{len(failed)} jobs did not complete with 10 items"] if failed else [],
        "ok": not failed,
        "details": details,
    }
