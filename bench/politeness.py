"""The 1,000-page static crawl with the fleet-wide politeness on (the defaults) and off.

One stack (bench/common.py: redis-server, SecantusDB on disk, gunicorn, one Celery worker on
queue `scrapy`), the demo site in its own process. Rounds of (off, then on): before each crawl
the worker is restarted with `DOMAIN_CONCURRENCY=0` (off: no Redis round trip, today's path)
or with the defaults (on: `DOMAIN_CONCURRENCY=8`, `DOMAIN_DELAY_SECONDS=0`: every request
takes and gives back a site slot in Redis), then warmed up with a one-page job; the crawl is
timed from POST /jobs to `completed`. The ratio on ÷ off of the medians is the cost, measured
in the same run so a loaded machine slows both sides alike; the worker's CPU seconds per crawl
(on ÷ off) are the cost a loaded machine disturbs least.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from bench.common import (
    PRODUCTION_PROGRESS_INTERVAL,
    Cleanup,
    Sampler,
    Service,
    log,
    median_run,
    ratio,
    service_job,
    stack_of,
    start_site,
    warm_up,
)

TITLE = "Static crawl with the fleet-wide politeness on and off"
ABOUT = (
    "The whole demo catalog crawled through the service with the shared per-site slots in "
    "Redis on (the defaults: `DOMAIN_CONCURRENCY=8`, `DOMAIN_DELAY_SECONDS=0`) and off "
    "(`DOMAIN_CONCURRENCY=0`), the worker restarted and warmed up before each crawl, in rounds "
    "of off then on; the medians are compared."
)
LABELS = {
    "pages": "pages crawled (10 items each)",
    "concurrency": "job concurrency",
    "rounds": "rounds (off, then on)",
    "politeness_on_pages_per_s": "crawl with the shared politeness (defaults), pages/s (median)",
    "politeness_off_pages_per_s": "crawl without it (`DOMAIN_CONCURRENCY=0`), pages/s (median)",
    "ratio_per_round": "on ÷ off, each round",
    "worker_cpu_s_on": "the worker's CPU seconds for the crawl, politeness on (median)",
    "worker_cpu_s_off": "the worker's CPU seconds for the crawl, politeness off (median)",
    "redis_cpu_s_on": "Redis's CPU seconds for the crawl, politeness on (median)",
    "redis_cpu_s_off": "Redis's CPU seconds for the crawl, politeness off (median)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pages", type=int, default=1000, help="catalog pages crawled")
    parser.add_argument("--concurrency", type=int, default=8, help="the job's concurrency")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the medians are compared")


def restart_worker(svc: Service, site: str, politeness: bool) -> None:
    """The scrapy worker again, with the politeness on (defaults) or off."""
    svc.stack.stop_process("worker-scrapy")
    env = {"PROGRESS_INTERVAL_SECONDS": PRODUCTION_PROGRESS_INTERVAL}
    if not politeness:
        env["DOMAIN_CONCURRENCY"] = "0"
    svc.stack.start_worker("scrapy", concurrency=1, **env)
    warm_up(svc, site)


def crawl(svc: Service, site: str, pages: int, concurrency: int) -> dict:
    sampler = Sampler(svc.roots, interval=0.2).start()
    try:
        job = svc.run_job(service_job(site, pages, concurrency), poll=0.05, timeout=1800)
    finally:
        sampler.stop()
    elapsed = job["_bench"]["elapsed_s"]
    cpu = sampler.cpu_seconds()
    return {
        "worker_cpu_s": cpu.get("worker"),
        "redis_cpu_s": cpu.get("redis"),
        "foreign_cpu": sampler.foreign_cpu(),
        "job_id": job["id"],
        "status": job["status"],
        "pages": job.get("pages_crawled"),
        "items": job.get("items_scraped"),
        "post_to_completed_s": round(elapsed, 3),
        "pages_per_s": round((job.get("pages_crawled") or 0) / elapsed, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.pages < 1 or args.repeat < 1 or args.concurrency < 1:
        raise SystemExit("--pages, --repeat and --concurrency must be positive")
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    with Cleanup() as cleanup, stack_of(args.results_dir) as stack:
        site, site_proc = start_site(args.pages, cleanup)
        svc = Service(stack, site_proc.pid).start()
        for k in range(args.repeat):
            for side in ("off", "on"):
                log(f"round {k + 1}/{args.repeat}: politeness {side}, {args.pages} pages")
                restart_worker(svc, site, politeness=side == "on")
                done = crawl(svc, site, args.pages, args.concurrency)
                log(f"  {done['status']}: {done['pages']} pages = {done['pages_per_s']} pages/s")
                runs[side].append(done)
    on, off = median_run(runs["on"]), median_run(runs["off"])
    per_round = [
        round(a["pages_per_s"] / b["pages_per_s"], 2)
        for a, b in zip(runs["on"], runs["off"], strict=True)
    ]
    cpu = {
        f"{name}_cpu_s_{side}": statistics.median(r[f"{name}_cpu_s"] or 0.0 for r in runs[side])
        for name in ("worker", "redis")
        for side in ("on", "off")
    }
    problems = [
        f"{side} round {i + 1}: {r['status']}, {r['pages']} pages"
        for side, rs in runs.items()
        for i, r in enumerate(rs)
        if r["status"] != "completed" or r["pages"] != args.pages
    ]
    return {
        "figures": {
            "pages": args.pages,
            "concurrency": args.concurrency,
            "rounds": args.repeat,
            "politeness_on_pages_per_s": on["pages_per_s"],
            "politeness_off_pages_per_s": off["pages_per_s"],
            "ratio_per_round": per_round,
            **cpu,
        },
        "ratios": {
            "politeness_on_pages_per_s / politeness_off_pages_per_s": ratio(
                on["pages_per_s"], off["pages_per_s"]
            ),
            "worker_cpu_s_on / worker_cpu_s_off": ratio(
                cpu["worker_cpu_s_on"], cpu["worker_cpu_s_off"]
            ),
        },
        "notes": [f"median of the per-round ratios: {statistics.median(per_round):.2f}"]
        + [f"PROBLEM: {p}" for p in problems],
        "ok": not problems,
        "details": runs,
    }
