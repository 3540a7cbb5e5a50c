"""The service laid out over the simulated hosts, as deploy/docker-compose.yml lays it out:

    data      redis-server and the MongoDB wire server (SecantusDB), each on the host's address
    api       `python -m api` (gunicorn)
    ops       beat, scheduler, worker-maintenance, worker-webhooks
    worker-K  worker-scrapy
    site      the demo catalog (testing/sites/server.py), the crawls' target
    client    this harness: submits jobs over HTTP, audits the store

Every app process runs its deploy/Procfile command line with the compose environment: ENV
production, and only REDIS_URL, MONGO_URL and API_* pointing across hosts. The target policy
stays `block`, with the site's address allow-listed, as an operator would do.
"""

from __future__ import annotations

import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any

from deploy.sim.hosts import Hosts, Proc
from deploy.sim.net import Network

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
from local import read_procfile  # noqa: E402

REDIS_PORT, MONGO_PORT, API_PORT, SITE_PORT = 6379, 27017, 8000, 8080
ADDRESSES = {"data": 2, "api": 3, "ops": 4, "site": 5, "client": 6}
OPS = ("beat", "scheduler", "worker-maintenance", "worker-webhooks")


def worker_host(k: int) -> str:
    return f"worker-{k}"


class Stack:
    """Starts the hosts' processes and knows their addresses."""

    def __init__(
        self, net: Network, hosts: Hosts, workdir: Path, knobs: dict[str, str], site: dict
    ) -> None:
        self.net, self.hosts, self.workdir = net, hosts, workdir
        self.knobs, self.site = knobs, site
        self.procfile = read_procfile()
        self.jwt = secrets.token_urlsafe(32)
        self.secrets_key = secrets.token_urlsafe(32)

    # -- addresses ----------------------------------------------------------------------------
    @property
    def redis_url(self) -> str:
        return f"redis://{self.net.address('data')}:{REDIS_PORT}/0"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://{self.net.address('data')}:{MONGO_PORT}/?directConnection=true&retryWrites=false"

    @property
    def api_base(self) -> str:
        return f"http://{self.net.address('api')}:{API_PORT}/api/v1"

    @property
    def site_url(self) -> str:
        return f"http://{self.net.address('site')}:{SITE_PORT}"

    # -- environments -------------------------------------------------------------------------
    def base_env(self, host: str) -> dict[str, str]:
        return {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.workdir / host),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "HOSTNAME": host,
        }

    def app_env(self, host: str, **extra: str) -> dict[str, str]:
        """The compose `x-app` environment, on this host."""
        (self.workdir / host).mkdir(exist_ok=True)
        env = self.base_env(host)
        env.update(
            ENV="production",
            REDIS_URL=self.redis_url,
            MONGO_URL=self.mongo_url,
            MONGO_DB="scrapemaster",
            PRIVATE_TARGETS="block",
            TARGET_ALLOWLIST=f"{self.net.address('site')}:{SITE_PORT}",
            LOG_LEVEL="INFO",
            VAR_DIR=str(self.workdir / host / "var"),
            REGISTRATION="open",  # the workload registers its own users (closed in production)
        )
        env.update(self.knobs)
        env.update(extra)
        return env

    # -- hosts --------------------------------------------------------------------------------
    def add_hosts(self, workers: int) -> None:
        for host, octet in ADDRESSES.items():
            self.net.add(host, octet)
        for k in range(1, workers + 1):
            self.net.add(worker_host(k), 10 + k)

    def start_data(self) -> None:
        data = self.workdir / "data"
        (data / "mongo").mkdir(parents=True, exist_ok=True)
        self.start_redis()
        self.hosts.start(
            "data",
            "mongo",
            f"{sys.executable} -m secantus --host 0.0.0.0 --port {MONGO_PORT} "
            f"--storage-path {data / 'mongo'} --log-level WARNING",
            self.base_env("data"),
        )
        wait_port(self.net.address("data"), MONGO_PORT, 60, "SecantusDB")

    def start_redis(self) -> Proc:
        """redis-server without persistence: a restart brings it back empty."""
        proc = self.hosts.start(
            "data",
            "redis",
            f"redis-server --bind 0.0.0.0 --port {REDIS_PORT} --protected-mode no "
            f"--save '' --appendonly no --dir {self.workdir / 'data'}",
            self.base_env("data"),
            restart=False,
        )
        wait_port(self.net.address("data"), REDIS_PORT, 30, "redis-server")
        return proc

    def start_site(self) -> None:
        args = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in self.site.items())
        command = (
            f"{sys.executable} -m testing.sites.server --host 0.0.0.0 --port {SITE_PORT} {args}"
        )
        self.hosts.start("site", "site", command, self.base_env("site"))
        wait_port(self.net.address("site"), SITE_PORT, 30, "site")

    def start_api(self) -> None:
        env = self.app_env(
            "api",
            API_HOST="0.0.0.0",
            API_PORT=str(API_PORT),
            API_WORKERS="2",
            JWT_SECRET_KEY=self.jwt,  # only the API gets it, as in compose
            SECRETS_KEY=self.secrets_key,  # the API seals jobs' secrets, crawl workers open them
        )
        self.hosts.start("api", "api", self.procfile["api"], env)

    def start_ops(self) -> None:
        for name in OPS:
            self.hosts.start("ops", name, self.procfile[name], self.app_env("ops"))

    def start_worker(self, k: int) -> Proc:
        host = worker_host(k)
        env = self.app_env(host, SECRETS_KEY=self.secrets_key)  # as compose's worker-scrapy
        return self.hosts.start(host, "worker-scrapy", self.procfile["worker-scrapy"], env)

    def worker_ready_check(self, k: int) -> tuple[int, str]:
        """The compose healthcheck, run on worker host k: `python -m workers.ready scrapy`."""
        import subprocess

        host = worker_host(k)
        done = subprocess.run(
            ["ip", "netns", "exec", self.net.namespace(host), "unshare", "--uts", "bash", "-c",
             f"hostname {host} && exec {sys.executable} -m workers.ready scrapy --timeout 3"],
            cwd=ROOT, env=self.app_env(host), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        said = (done.stdout + done.stderr).strip().splitlines()
        return done.returncode, said[-1] if said else ""

    def wait_worker(self, proc: Proc, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in proc.log.read_text(errors="replace"):
                return
            if proc.popen is not None and proc.popen.poll() is not None and not proc.restart:
                break
            time.sleep(0.25)
        raise RuntimeError(f"{proc.host}/{proc.name} not ready: {tail(proc.log)}")


def wait_port(host: str, port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} on {host}:{port} did not answer within {timeout:.0f} s")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_http(url: str, timeout: float, proc: Any = None) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise RuntimeError(
        f"{url} not ready within {timeout:.0f} s" + (f": {tail(proc.log)}" if proc else "")
    )
