"""The workers' readiness check (`python -m workers.ready`), against a worker started with the
Procfile's own command line, as compose and Kubernetes run it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from testing.helpers import ROOT, Stack, closed_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def procfile_worker(redis_url, mongo_url, tmp_path_factory):
    sys.path.insert(0, str(ROOT / "deploy"))
    from local import read_procfile

    stack = Stack(
        redis_url, mongo_url, f"ready_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("r")
    )
    command = read_procfile()["worker-scrapy"]  # `-n scrapy@%h`, as every deployment names it
    path = f"{Path(sys.executable).parent}:{stack.env()['PATH']}"  # `celery` of this venv
    proc = stack.spawn(
        "worker", ["bash", "-c", f"exec {command}"], PATH=path, SCRAPY_CONCURRENCY="1"
    )
    try:
        wait_for(lambda: " ready." in stack.logs["worker"].read_text(), 60, message="worker up")
        yield stack
    finally:
        stack.stop_process("worker")
        assert proc.poll() is not None
        stack.stop()


def ready(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workers.ready", *args, "--timeout", "2"],
        cwd=ROOT,
        env=stack.env(**env),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_running_worker_is_ready_under_its_procfile_node_name(procfile_worker):
    answer = ready(procfile_worker, "scrapy")
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert answer.stdout.startswith("ready: scrapy@")


def test_a_host_without_that_worker_is_not_ready(procfile_worker):
    answer = ready(procfile_worker, "playwright")
    assert answer.returncode == 1
    assert "did not answer within 2 s" in answer.stdout


def test_an_unreachable_broker_is_not_ready_and_does_not_hang(procfile_worker):
    with closed_port() as refusing:
        answer = ready(procfile_worker, "scrapy", REDIS_URL=f"redis://127.0.0.1:{refusing}/0")
    assert answer.returncode == 1
    assert "broker unreachable" in answer.stdout
