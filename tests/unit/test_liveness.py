"""Liveness files (shared/liveness.py) and how the supervisor of `make run` judges a hang."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared import liveness
from shared.settings import Settings, SettingsError
from testing.helpers import ROOT, wait_for


def load_supervisor():
    spec = importlib.util.spec_from_file_location("make_run_local", ROOT / "deploy" / "local.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def age_file(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_touch_creates_the_file_with_its_pid_then_refreshes_it(tmp_path):
    path = tmp_path / "deep" / "alive"
    assert liveness.age(path) is None
    liveness.touch(path)
    assert liveness.owner(path) == os.getpid()
    age_file(path, 100)
    assert liveness.age(path) >= 99
    liveness.touch(path)
    assert liveness.age(path) < 5 and liveness.owner(path) == os.getpid()


def test_check_says_fresh_stale_or_missing(tmp_path):
    path = tmp_path / "alive"
    alive, message = liveness.check(str(path), 30)
    assert not alive and "does not exist" in message
    liveness.touch(path)
    assert liveness.check(str(path), 30)[0]
    age_file(path, 45)
    alive, message = liveness.check(str(path), 30)
    assert not alive and "> 30 s" in message


def test_the_heartbeat_touches_at_most_once_per_interval(tmp_path):
    path = tmp_path / "alive"
    heart = liveness.Heartbeat(str(path), 60)
    assert heart.every == 5.0  # a sixth of the timeout, at most 5 s
    heart.beat()
    age_file(path, 3)
    heart.beat()  # too soon: not touched again
    assert liveness.age(path) >= 2.5
    assert liveness.Heartbeat.from_settings(Settings(liveness_file="")) is None


def test_the_probe_kills_a_hung_process_but_never_one_still_starting(tmp_path):
    path = tmp_path / "alive"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        liveness.kill_hung(str(path))  # no file: still starting, left alone
        assert sleeper.poll() is None
        path.write_text(f"{sleeper.pid}\n")
        age_file(path, 120)
        code = subprocess.run(
            [sys.executable, "-m", "shared.liveness", str(path), "--max-age", "60", "--kill"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert code.returncode == 1 and "not alive" in code.stdout
        assert sleeper.wait(10) == -9
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_timeout_leaves_time_for_the_slowest_tick():
    with pytest.raises(SettingsError, match="LIVENESS_TIMEOUT_SECONDS"):
        Settings.from_env({"LIVENESS_TIMEOUT_SECONDS": "5"})
    with pytest.raises(SettingsError, match="SCHEDULER_TICK_SECONDS"):
        Settings.from_env({"LIVENESS_TIMEOUT_SECONDS": "20", "SCHEDULER_TICK_SECONDS": "10"})
    assert Settings.from_env({"LIVENESS_TIMEOUT_SECONDS": "0"}).liveness_timeout_seconds == 0
    assert Settings.from_env({}).liveness_timeout_seconds == 60


def test_the_supervisor_judges_a_hang_by_the_file_and_gives_a_start_longer(tmp_path):
    local = load_supervisor()
    child = local.Child("worker-scrapy", "true", {}, "36")
    child.liveness = tmp_path / "worker-scrapy"
    child.liveness_timeout = 10.0
    child.started = time.monotonic()
    assert child.hung(child.started + 60) is None  # no heartbeat yet: starting
    assert child.hung(child.started + local.STARTUP_ALLOWANCE + 1) is not None
    liveness.touch(child.liveness)
    assert child.hung(time.monotonic()) is None
    age_file(child.liveness, 11)
    assert child.hung(time.monotonic()) >= 10
    child.liveness_timeout = 0  # LIVENESS_TIMEOUT_SECONDS=0: never judged
    assert child.hung(time.monotonic()) is None
    assert [n for n in local.read_procfile() if local.watched(n)] == [
        "worker-scrapy",
        "worker-playwright",
        "worker-spiders",
        "worker-maintenance",
        "worker-webhooks",
        "beat",
        "scheduler",
    ]


def test_the_reaper_gives_a_job_its_grace_before_sigkill(tmp_path):
    """A killed supervisor's reaper SIGTERMs, then waits the grace (WORKER_SHUTDOWN_GRACE_SECONDS
    and a margin) before SIGKILL: a worker handing its job back in 6 s is not cut off at 5."""
    done, ready = tmp_path / "handed-back", tmp_path / "ready"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import pathlib, signal, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(6),"
            f" pathlib.Path({str(done)!r}).write_text('ok'), sys.exit(0)))\n"
            f"pathlib.Path({str(ready)!r}).write_text('ready')\n"
            "time.sleep(120)\n",
        ],
        start_new_session=True,
    )
    reaper = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy" / "local.py"), "--reaper", "--grace", "30"],
        stdin=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(ready.exists, 30, message="the worker's SIGTERM handler")
        assert reaper.stdin is not None
        reaper.stdin.write(f"{worker.pid}\n")
        reaper.stdin.close()  # the supervisor is gone
        assert worker.wait(30) == 0 and done.read_text() == "ok"
        assert reaper.wait(30) == 0
    finally:
        for proc in (worker, reaper):
            proc.kill()
            proc.wait()
