"""A hung worker under `make run`: how soon it is replaced and the job it held completes.

    .venv/bin/python bench/run.py --only hang [--timeout 60] [--pages 20]

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
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from deploy import embedded  # noqa: E402
from testing.helpers import catalog_crawl, processes_of, wait_for  # noqa: E402
from testing.make_run import Run, api, job, main_process, register  # noqa: E402
from testing.sites.server import SiteServer  # noqa: E402


def measure(timeout: float, pages: int) -> dict[str, float | int | str]:
    tmp = Path(tempfile.mkdtemp(prefix="hang-"))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="LIVENESS_TIMEOUT_SECONDS")
    parser.add_argument("--pages", type=int, default=20, help="pages of the held crawl")
    args = parser.parse_args()
    print(measure(args.timeout, args.pages), flush=True)


if __name__ == "__main__":
    main()
