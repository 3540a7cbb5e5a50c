"""The 1,000-page static crawl through the service against bare Scrapy, in the same run.

The demo site runs in its own process; redis-server and SecantusDB (on disk) start, then
gunicorn (API) and one Celery worker on queue `scrapy` with concurrency 1. One warm-up one-page
job runs (the worker imports Scrapy and starts its reactor on its first job). Then rounds of
(bare Scrapy in a fresh interpreter, bench/bare_scrapy.py; then the service: one job crawling
the whole site, timed from POST /jobs to `completed`, polled every 50 ms), so drift of the
machine's speed hits both sides alike; the medians are compared. Both crawls use the same shape
(bench/common.py): 100 start URLs, each followed along `li.next a`. Pages and items must match.
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
    log,
    median_run,
    noisy,
    ratio,
    result_line,
    run_program,
    service_job,
    stack_of,
    start_site,
    warm_up,
)

TITLE = "Static crawl against bare Scrapy"
ABOUT = (
    "The whole demo catalog (10 items a page) crawled through the service (API → Celery → "
    "Scrapy → MongoDB, timed from `POST /jobs` to `completed`) and by a bare Scrapy "
    "`CrawlerProcess` in a fresh interpreter, in rounds of bare then service; the same 100 "
    "start URLs each following `li.next a`, the same selectors, robots.txt obeyed; pages and "
    "items must match. The medians of the rounds are compared."
)
LABELS = {
    "pages": "pages crawled (10 items each)",
    "concurrency": "concurrency (both sides)",
    "rounds": "rounds (bare, then service)",
    "service_pages_per_s": "static crawl through the service, pages/s (median)",
    "bare_scrapy_pages_per_s": "bare Scrapy, pages/s (median)",
    "ratio_per_round": "service ÷ bare, each round",
    "bare_scrapy_cpu_s": "bare Scrapy's CPU seconds (crawl only)",
    "worker_cpu_s": "service: the worker's CPU seconds",
    "secantusdb_cpu_s": "service: the MongoDB wire server's CPU seconds",
    "api_cpu_s": "service: the API's CPU seconds (status polls)",
    "peak_rss_mb": "service: peak RSS during the crawl, MB",
    "warmup_job_ms": "first one-page job (imports, reactor), ms",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pages", type=int, default=1000, help="catalog pages crawled")
    parser.add_argument("--concurrency", type=int, default=8, help="requests at once, both sides")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the medians are compared")


def run_bare(site: str, pages: int, concurrency: int, roots: dict, cleanup: Cleanup) -> dict:
    argv = ["--site", site, "--pages", str(pages), "--concurrency", str(concurrency)]
    t0 = time.perf_counter()
    proc = run_program("bench.bare_scrapy", argv, cleanup)
    sampler = Sampler(lambda: {"bare_scrapy": proc.pid, **roots}, 0.2).start()
    try:
        out, err = proc.communicate(timeout=1800)
    finally:
        sampler.stop()
    result = result_line(proc, out, err)
    result["process_wall_s"] = round(time.perf_counter() - t0, 3)
    result["pages_per_s"] = round(result["pages"] / result["crawl_s"], 1)
    result["cpu_seconds"] = sampler.cpu_seconds()  # whole process, imports included
    result["peak_rss_mb"] = sampler.peak_rss_mb()
    result["foreign_cpu"] = sampler.foreign_cpu()
    result["stack_idle_cpu_s"] = round(
        sum(v for n, v in result["cpu_seconds"].items() if n not in ("bare_scrapy", "site")), 2
    )
    return result


def run_service(svc: Service, site: str, pages: int, concurrency: int, bare: dict) -> dict:
    from shared import items

    sampler = Sampler(svc.roots, interval=0.2).start()
    try:
        job = svc.run_job(service_job(site, pages, concurrency), poll=0.05, timeout=1800)
    finally:
        sampler.stop()
    elapsed = job["_bench"]["elapsed_s"]
    stored = items.count(svc.stack.database(), job["id"])
    result = {
        "job_id": job["id"],
        "status": job["status"],
        "error": job.get("error"),
        "pages": job.get("pages_crawled"),
        "items": job.get("items_scraped"),
        "results_in_db": stored,
        "post_to_completed_s": round(elapsed, 3),
        "pages_per_s": round((job.get("pages_crawled") or 0) / elapsed, 1),
        "server_phases": job["_bench"]["server"],
        "cpu_seconds": sampler.cpu_seconds(),
        "peak_rss_mb": sampler.peak_rss_mb(),
        "foreign_cpu": sampler.foreign_cpu(),
    }
    problems = []
    if job["status"] != "completed":
        problems.append(f"status {job['status']} ({job.get('error')})")
    if result["pages"] != bare["pages"]:
        problems.append(f"pages_crawled {result['pages']} != bare scrapy {bare['pages']}")
    if result["items"] != bare["items"]:
        problems.append(f"items_scraped {result['items']} != bare scrapy {bare['items']}")
    if stored != result["items"]:
        problems.append(f"results in MongoDB {stored} != items_scraped {result['items']}")
    result["mismatch"] = problems
    if problems:
        log("MISMATCH service vs bare scrapy: " + "; ".join(problems))
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.pages < 1 or args.repeat < 1 or args.concurrency < 1:
        raise SystemExit("--pages, --repeat and --concurrency must be positive")
    bare_runs: list[dict] = []
    svc_runs: list[dict] = []
    with Cleanup() as cleanup, stack_of(args.results_dir) as stack:
        site, site_proc = start_site(args.pages, cleanup)
        svc = Service(stack, site_proc.pid).start()
        warm = warm_up(svc, site)
        for k in range(args.repeat):
            log(f"round {k + 1}/{args.repeat}: bare scrapy, {args.pages} pages (fresh process)")
            bare = run_bare(site, args.pages, args.concurrency, svc.roots(), cleanup)
            log(f"  {bare['pages']} pages, {bare['items']} items = {bare['pages_per_s']} pages/s")
            bare_runs.append(bare)
            log(f"round {k + 1}/{args.repeat}: service, API -> Celery -> Scrapy -> MongoDB")
            served = run_service(svc, site, args.pages, args.concurrency, bare)
            log(f"  {served['status']}: {served['pages']} pages = {served['pages_per_s']} pages/s")
            svc_runs.append(served)
    b, s = median_run(bare_runs), median_run(svc_runs)
    rounds = list(zip(bare_runs, svc_runs, strict=True))
    quiet = [
        sv["pages_per_s"] / br["pages_per_s"]
        for br, sv in rounds
        if not noisy(br) and not noisy(sv)
    ]
    cpu = s["cpu_seconds"]
    figures = {
        "pages": args.pages,
        "concurrency": args.concurrency,
        "rounds": args.repeat,
        "service_pages_per_s": s["pages_per_s"],
        "bare_scrapy_pages_per_s": b["pages_per_s"],
        "ratio_per_round": [round(sv["pages_per_s"] / br["pages_per_s"], 2) for br, sv in rounds],
        "bare_scrapy_cpu_s": b["crawl_cpu_s"],
        "worker_cpu_s": cpu.get("worker"),
        "secantusdb_cpu_s": cpu.get("secantusdb"),
        "api_cpu_s": cpu.get("api"),
        "peak_rss_mb": {k: s["peak_rss_mb"].get(k) for k in ("worker", "secantusdb", "api")},
        "warmup_job_ms": warm,
    }
    notes = []
    if len(quiet) < len(rounds):
        notes.append(
            f"{len(rounds) - len(quiet)} of {len(rounds)} rounds were noisy (other processes used "
            "more than 10% of a core)"
            + (
                f"; the quiet rounds' median ratio is {statistics.median(quiet):.2f}"
                if quiet
                else ""
            )
        )
    mismatch = [m for r in svc_runs for m in r["mismatch"]]
    return {
        "figures": figures,
        "ratios": {
            "service_pages_per_s / bare_scrapy_pages_per_s": ratio(
                s["pages_per_s"], b["pages_per_s"]
            )
        },
        "notes": notes + [f"MISMATCH: {m}" for m in mismatch],
        "ok": not mismatch,
        "details": {"bare_scrapy": bare_runs, "service": svc_runs},
    }
