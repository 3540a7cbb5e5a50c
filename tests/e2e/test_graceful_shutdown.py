"""Rolling deploys: SIGTERM to a worker finishes its running job or hands it back, and the job
ends once, with every item stored once (real worker processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import pytest

from shared import items
from testing.helpers import Stack, wait_for
from testing.helpers import catalog_crawl as crawl
from testing.sites.server import SiteServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def deploy_stack(redis_url, mongo_url, tmp_path_factory):
    stack = Stack(
        redis_url, mongo_url, f"stop_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("stop")
    )
    try:
        # a stale heartbeat would only be noticed after a minute: a fast take-over is the
        # hand-back, never the lost-worker path
        stack.start(api=True, queues=(), JOB_STALE_SECONDS="60", RECONCILE_AFTER_SECONDS="600")
        yield stack
    finally:
        stack.stop()


def running_on(stack: Stack, job_id: str, name: str, items: int) -> bool:
    doc = stack.database().jobs.find_one({"_id": job_id})
    return bool(
        doc
        and doc["status"] == "running"
        and str(doc.get("worker", "")).startswith(name)
        and doc.get("items_scraped", 0) >= items
    )


def assert_stored_once(stack: Stack, job_id: str, expected: int) -> dict:
    db = stack.database()
    skus = [r["data"]["sku"] for r in items.iterate(db, job_id)]
    assert len(skus) == len(set(skus)) == expected, (len(skus), len(set(skus)))
    finals = db.logs.count_documents({"job_id": job_id, "message": {"$regex": "^completed"}})
    assert finals == 1
    lost = db.logs.count_documents({"job_id": job_id, "message": {"$regex": "lost worker|lost:"}})
    assert lost == 0  # not the stale-heartbeat path
    return db.jobs.find_one({"_id": job_id})


def stop(proc: subprocess.Popen, group: bool) -> int:
    if group:
        os.killpg(proc.pid, signal.SIGTERM)  # what `make run` and `kill -- -PGID` do
    else:
        proc.send_signal(signal.SIGTERM)  # what Kubernetes and tini do: the main process only
    return proc.wait(60)


@pytest.mark.parametrize("group", [False, True], ids=["main-process", "process-group"])
def test_sigterm_hands_back_a_long_job_and_another_worker_finishes_it(deploy_stack, group):
    stack = deploy_stack
    headers = stack.register()
    with SiteServer(pages=12, delay=1.0) as site:  # 12 s: longer than the steps below
        leaving = stack.start_worker("scrapy", name="leaving", WORKER_SHUTDOWN_GRACE_SECONDS="1")
        job = stack.submit(headers, **crawl(site))
        wait_for(lambda: running_on(stack, job["id"], "leaving", 10), 30, message="job started")
        stack.start_worker("scrapy", name="arriving")  # the new replica of a rolling deploy
        assert stop(leaving, group) == 0
        stack.procs.pop("leaving")
        done = stack.wait_job(job["id"], headers, timeout=60)
        stack.stop_process("arriving")
    assert done["status"] == "completed", done
    doc = assert_stored_once(stack, job["id"], 120)
    assert doc["worker"].startswith("arriving") and doc["attempts"] == 2
    assert done["items_scraped"] == 120 and done["pages_crawled"] == 12
    handed = stack.database().logs.find_one(
        {"job_id": job["id"], "message": {"$regex": "^handed back by leaving"}}
    )
    assert handed is not None
    assert "worker: Warm shutdown" in stack.logs["leaving"].read_text()


def test_sigterm_lets_a_job_finish_within_the_grace_on_the_same_worker(deploy_stack):
    stack = deploy_stack
    headers = stack.register()
    with SiteServer(pages=4, delay=0.5) as site:
        worker = stack.start_worker("scrapy", name="patient", WORKER_SHUTDOWN_GRACE_SECONDS="60")
        job = stack.submit(headers, **crawl(site))
        wait_for(lambda: running_on(stack, job["id"], "patient", 10), 30, message="job started")
        assert stop(worker, group=False) == 0  # waits for the job, then exits
        stack.procs.pop("patient")
    done = stack.job(job["id"], headers)
    assert done["status"] == "completed", done
    doc = assert_stored_once(stack, job["id"], 40)
    assert doc["worker"].startswith("patient") and doc["attempts"] == 1
