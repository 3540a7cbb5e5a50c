"""A hung worker under `make run`: how soon it is replaced and the job it held completes.

Runs the real supervisor (deploy/local.py: api, scrapy and maintenance workers, beat,
scheduler; its own var dir, ports and Redis), starts a crawl of the demo catalog, SIGSTOPs the
whole scrapy worker (main and pool processes) once the job runs, and times, from the stop:
the supervisor's `worker-scrapy is hung`, the new worker process, and the job's end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import requests

from bench.common import log
from deploy import embedded
from testing.helpers import catalog_crawl, processes_of, wait_for
from testing.make_run import Run, api, job, main_process, register
from testing.sites.server import SiteServer

TITLE = "A hung worker replaced"
ABOUT = (
    "The real `make run` supervisor (api, scrapy and maintenance workers, beat, scheduler; its "
    "own var dir, ports and Redis) with the default `LIVENESS_TIMEOUT_SECONDS`; a crawl of the "
    "demo catalog (0.5 s a page) starts, then the whole scrapy worker (main and pool processes) "
    "is SIGSTOPped: seconds from the stop until the supervisor says `worker-scrapy is hung`, "
    "until a new worker runs, and until the job it held ends. One value per run."
)
LABELS = {
    "runs": "runs",
    "liveness_timeout_s": "`LIVENESS_TIMEOUT_SECONDS`",
    "pages": "pages of the held crawl (10 items each)",
    "hung_after_s": "`hung` said after the stop, s",
    "new_worker_after_s": "a new worker after, s",
    "job_ended_after_s": "the held job completed after, s",
    "items": "its items",
    "attempts": "its attempt",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=60.0, help="LIVENESS_TIMEOUT_SECONDS")
    parser.add_argument("--pages", type=int, default=20, help="pages of the held crawl")
    parser.add_argument("--runs", type=int, default=1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for k in range(args.runs):
        log(f"run {k + 1}/{args.runs}")
        runs.append(measure(args.timeout, args.pages, Path(args.results_dir) / f"run-{k + 1}"))
        log(f"  {runs[-1]}")
    figures: dict[str, Any] = {
        "runs": args.runs,
        "liveness_timeout_s": args.timeout,
        "pages": args.pages,
    }
    for key in ("hung_after_s", "new_worker_after_s", "job_ended_after_s", "items", "attempts"):
        figures[key] = [r[key] for r in runs]
    ok = all(r["status"] == "completed" for r in runs)
    return {"figures": figures, "ratios": {}, "ok": ok, "details": runs}


def measure(timeout: float, pages: int, tmp: Path) -> dict[str, Any]:
    tmp.mkdir(parents=True, exist_ok=True)
    port = embedded.free_port()
    redis = embedded.start_redis(tmp / "redis", port)
    run = Run(tmp, f"redis://127.0.0.1:{port}/0", LIVENESS_TIMEOUT_SECONDS=f"{timeout:g}")
    stopped: list[int] = []
    try:
        run.start(only="api,worker-scrapy,worker-maintenance,beat,scheduler")
        headers = register(run)
        worker = main_process(run, b"-Q\0scrapy")
        assert worker is not None
        with SiteServer(pages=pages, delay=0.5) as site:
            answer = requests.post(
                api(run, "/jobs"), json=catalog_crawl(site), headers=headers, timeout=10
            )
            held = answer.json()["id"]
            wait_for(lambda: job(run, headers, held)["status"] == "running", 60)
            stopped = processes_of(run.var, b"-Q\0scrapy")
            os.killpg(os.getpgid(worker), signal.SIGSTOP)
            start = time.monotonic()
            wait_for(lambda: "worker-scrapy is hung" in run.text(), timeout + 240, interval=0.2)
            hung = time.monotonic() - start
            wait_for(
                lambda: main_process(run, b"-Q\0scrapy") not in (None, worker),
                240,
                interval=0.2,
            )
            replaced = time.monotonic() - start
            done = wait_for(
                lambda: (lambda j: j if j["status"] in ("completed", "failed") else None)(
                    job(run, headers, held)
                ),
                600,
                interval=0.5,
            )
            ended = time.monotonic() - start
        return {
            "hung_after_s": round(hung, 1),
            "new_worker_after_s": round(replaced, 1),
            "job_ended_after_s": round(ended, 1),
            "status": done["status"],
            "items": done["items_scraped"],
            "attempts": done["attempts"],
        }
    finally:
        for pid in stopped:  # a stopped process left behind never ends on SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        run.cleanup()
        redis.stop()
