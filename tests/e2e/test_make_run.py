"""`make run`'s supervisor: restarts what dies, refuses to share, leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from deploy import embedded
from testing.helpers import processes_of, redis_database, wait_for
from testing.make_run import Run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def runs(tmp_path, redis_url):
    made: list[Run] = []
    with contextlib.ExitStack() as databases:

        def make(**env: str) -> Run:
            run = Run(tmp_path, databases.enter_context(redis_database(redis_url, tmp_path)), **env)
            made.append(run)
            return run

        yield make
        for run in made:
            run.cleanup()


def test_a_dead_worker_is_restarted_and_a_killed_supervisor_leaves_nothing(runs):
    run = runs().start()
    workers = [
        p for p in processes_of(run.var) if b"-Q\0scrapy" in Path(f"/proc/{p}/cmdline").read_bytes()
    ]
    main_worker = min(workers)  # the worker's main process; the rest are its pool
    os.kill(main_worker, signal.SIGKILL)
    wait_for(
        lambda: "worker-scrapy exited with code -9; restarting" in run.text(), 20, message="restart"
    )

    def replaced() -> bool:
        now = [
            p
            for p in processes_of(run.var)
            if b"-Q\0scrapy" in Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        return bool(now) and main_worker not in now

    wait_for(replaced, 30, message="a new worker-scrapy")
    assert run.proc is not None
    os.kill(run.proc.pid, signal.SIGKILL)  # the supervisor dies hard: no handler runs
    wait_for(lambda: not processes_of(run.var), 30, message="every process of the run gone")


def test_sigterm_to_the_process_group_stops_everything_once(runs):
    run = runs().start()
    assert run.proc is not None
    os.killpg(run.proc.pid, signal.SIGTERM)
    os.killpg(run.proc.pid, signal.SIGTERM)  # a second signal must not break the stop
    code, text = run.run_to_end()
    assert code == 0, text[-2000:]
    assert "all processes stopped" in text
    wait_for(lambda: not processes_of(run.var), 20, message="nothing left running")


def test_a_second_instance_refuses_instead_of_sharing(runs):
    first = runs().start(only="api")
    same_var = runs(**{**first.env, "API_PORT": str(embedded.free_port())})
    same_var.var = first.var
    same_var.env["VAR_DIR"] = str(first.var)
    code, text = same_var.start(wait=False).run_to_end()
    assert code == 2 and "VAR_DIR" in text and "refusing to start" in text

    same_port = runs(API_PORT=first.env["API_PORT"])
    code, text = same_port.start(wait=False).run_to_end()
    assert code == 2 and f"port {first.env['API_PORT']} (API_PORT)" in text

    same_broker = runs(REDIS_URL=first.env["REDIS_URL"])
    code, text = same_broker.start(wait=False).run_to_end()
    assert code == 2 and "REDIS_URL" in text and "another ScrapeMaster instance" in text
    assert not processes_of(same_broker.var)


def test_the_flower_password_is_shown_by_where_it_is_under_the_real_var_dir(runs):
    run = runs().start(only="api,flower")
    wait_for(lambda: "Flower:" in run.text(), 30, message="the Flower line")
    line = next(x for x in run.text().splitlines() if "Flower:" in x)
    password = (run.var / "flower-password").read_text().strip()
    assert f"password in {run.var.resolve()}/flower-password" in line
    assert password not in run.text() and "var/flower-password" not in run.text()
