"""`make run` (deploy/local.py) under test: one instance on its own var dir, ports and Redis
database, and the calls a test or a benchmark makes to it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import requests

from deploy import embedded
from testing.helpers import ROOT, processes_of, wait_for


class Run:
    """One `make run` (deploy/local.py) on its own var dir, ports and Redis database
    (`redis_url`, leased by the caller)."""

    def __init__(self, tmp: Path, redis_url: str, **env: str) -> None:
        self.var = tmp / f"var-{uuid.uuid4().hex[:6]}"
        self.log = tmp / f"{self.var.name}.log"
        self.env = dict(
            os.environ,
            ENV="local",
            VAR_DIR=str(self.var),
            API_PORT=str(embedded.free_port()),
            FLOWER_PORT=str(embedded.free_port()),
            EMBEDDED_MONGO_PORT=str(embedded.free_port()),
            REDIS_URL=redis_url,
        )
        self.env.pop("MONGO_URL", None)
        self.env.update(env)
        self.proc: subprocess.Popen | None = None

    def start(self, only: str = "api,worker-scrapy", wait: bool = True) -> Run:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "deploy" / "local.py"), "--only", only],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            wait_for(lambda: self._said("| ready"), 120, interval=0.2, message="make run ready")
        return self

    def _said(self, text: str) -> bool:
        if self.proc is not None and self.proc.poll() is not None and "ready" in text:
            raise AssertionError(f"make run exited: {self.text()[-3000:]}")
        return text in self.text()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def run_to_end(self, timeout: float = 60) -> tuple[int, str]:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        return code, self.text()

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in processes_of(self.var):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def main_process(run: Run, needle: bytes) -> int | None:
    """The oldest live process of the run whose command line has `needle`: a worker's main
    process (its pool processes are younger)."""
    found = processes_of(run.var, needle)
    return min(found) if found else None


def api(run: Run, path: str) -> str:
    return f"http://127.0.0.1:{run.env['API_PORT']}/api/v1{path}"


def register(run: Run) -> dict:
    name = f"u{uuid.uuid4().hex[:10]}"
    body = {"username": name, "email": f"{name}@example.test", "password": "s3cret-pass"}
    assert requests.post(api(run, "/auth/register"), json=body, timeout=10).status_code == 201
    login = {"username": name, "password": body["password"]}
    token = requests.post(api(run, "/auth/login"), data=login, timeout=10).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def job(run: Run, headers: dict, job_id: str) -> dict:
    return requests.get(api(run, f"/jobs/{job_id}"), headers=headers, timeout=10).json()
