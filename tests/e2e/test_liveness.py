"""`make run` replaces a hung (SIGSTOPped) worker and scheduler, and the jobs the worker held
finish on its replacement (real supervisor, workers, beat, reconciler, API and site)."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
import requests

from testing.helpers import catalog_crawl, processes_of, wait_for
from testing.make_run import Run, api, job, main_process, register
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT = 10  # LIVENESS_TIMEOUT_SECONDS: small, so the test sees the replacement soon


@pytest.fixture
def run(tmp_path, redis_url):
    made = Run(
        tmp_path,
        redis_url,
        LIVENESS_TIMEOUT_SECONDS=str(TIMEOUT),
        JOB_STALE_SECONDS="5",
        RECONCILE_INTERVAL_SECONDS="2",
        RESEND_AFTER_SECONDS="5",
        RECONCILE_AFTER_SECONDS="5",
    )
    stopped: list[int] = []
    made.stopped = stopped  # type: ignore[attr-defined]
    try:
        yield made
    finally:
        for pid in stopped:  # a stopped process left behind would never die of SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        made.cleanup()
        if made.proc is not None:
            # reaped: a zombie supervisor would still hold the Redis database's instance lock
            made.proc.wait(30)


def test_a_sigstopped_worker_and_scheduler_are_replaced_and_the_held_job_completes(run):
    run.start(only="api,worker-scrapy,worker-maintenance,beat,scheduler")
    headers = register(run)
    worker = main_process(run, b"-Q\0scrapy")
    scheduler = main_process(run, b"workers.scheduler")
    assert worker and scheduler
    with SiteServer(pages=20, delay=0.5) as site:
        answer = requests.post(
            api(run, "/jobs"), json=catalog_crawl(site), headers=headers, timeout=10
        )
        assert answer.status_code == 201, answer.text
        held = answer.json()["id"]
        wait_for(lambda: job(run, headers, held)["status"] == "running", 60, message="job running")
        # the whole worker (main and pool) and the scheduler hang, as a stopped VM's would
        group = os.getpgid(worker)
        run.stopped.extend(processes_of(run.var, b"-Q\0scrapy"))  # type: ignore[attr-defined]
        os.killpg(group, signal.SIGSTOP)
        os.kill(scheduler, signal.SIGSTOP)
        run.stopped.append(scheduler)  # type: ignore[attr-defined]

        # replaced within the timeout (plus a check's turn and a loaded machine's slack)
        wait_for(
            lambda: main_process(run, b"-Q\0scrapy") not in (None, worker),
            TIMEOUT + 40,
            interval=0.2,
            message="a new worker-scrapy",
        )
        wait_for(
            lambda: main_process(run, b"workers.scheduler") not in (None, scheduler),
            TIMEOUT + 40,
            interval=0.2,
            message="a new scheduler",
        )
        text = run.text()
        assert "worker-scrapy is hung" in text and "scheduler is hung" in text, text[-3000:]

        done = wait_for(
            lambda: (lambda j: j if j["status"] in ("completed", "failed") else None)(
                job(run, headers, held)
            ),
            120,
            interval=0.5,
            message="the held job to end",
        )
    assert done["status"] == "completed", done
    assert done["items_scraped"] == 200 and done["pages_crawled"] == 20, done
    assert done["attempts"] >= 2  # taken over from the hung worker, not finished by it
