"""Test helpers: waiting on conditions, registering users, and a real process stack."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymongo
import redis
import requests

from deploy import embedded

ROOT = Path(__file__).resolve().parent.parent


def _database_numbers() -> list[int]:
    """The numbers a test process may lease: 1-15 of its own redis-server (0 is the integration
    tests'); of a server all xdist workers share (REDIS_TEST_URL), this worker's part."""
    numbers = list(range(1, 16))
    if os.environ.get("REDIS_TEST_URL"):
        worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
        numbers = numbers[worker :: int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))]
    return numbers


class RedisLease:
    """A Redis database no other live stack of this process uses: a free number of the tests'
    server, else (all held, e.g. by the scheduler race and a module's stacks) a redis-server of
    its own. Numbers are never shared: one reused while its first holder runs would let a
    `flushdb` or a worker of one stack act on the other's queues."""

    _free: dict[str, list[int]] = {}
    _lock = threading.Lock()

    def __init__(self, redis_url: str, workdir: Path) -> None:
        self.base = redis_url.rsplit("/", 1)[0]
        with self._lock:
            free = self._free.setdefault(self.base, _database_numbers())
            self.number: int | None = free.pop(0) if free else None
        self.service: embedded.Service | None = None
        if self.number is None:
            self.service = embedded.start_redis(Path(workdir) / f"redis-{uuid.uuid4().hex[:6]}")
            self.url = self.service.url
        else:
            self.url = f"{self.base}/{self.number}"

    def release(self) -> None:
        """Empty the database and give its number back (or stop the server of its own)."""
        if self.service is not None:
            self.service.stop()
            self.service = None
            return
        if self.number is None:
            return
        with contextlib.suppress(redis.RedisError):  # a chaos test may have stopped the server
            redis.Redis.from_url(self.url, socket_timeout=5).flushdb()
        with self._lock:
            self._free[self.base].append(self.number)
        self.number = None


@contextlib.contextmanager
def redis_database(redis_url: str, workdir: Path) -> Iterator[str]:
    """The URL of a Redis database of the caller's own for the `with` block (RedisLease)."""
    lease = RedisLease(redis_url, workdir)
    try:
        yield lease.url
    finally:
        lease.release()


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses every connection while the block runs: bound, never
    listening, so no other process (a parallel test run, say) can start answering on it, as it
    could on a port that was merely free when it was picked."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 30,
    interval: float = 0.05,
    message: str = "condition",
) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message} (last: {last!r})")


def processes_of(var_dir: Path, needle: bytes = b"") -> list[int]:
    """Live pids whose environment names VAR_DIR=`var_dir` (every process of one `make run`
    inherits it) and whose command line contains `needle`."""
    marker = f"VAR_DIR={var_dir}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes():
                continue
            if needle and needle not in (entry / "cmdline").read_bytes():
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            found.append(int(entry.name))
        except OSError:
            continue
    return found


def force_status(db: Any, job_id: str, status: str, **fields: Any) -> None:
    """Put a job in `status` by hand (tests that start from any state), then recount the job
    counters as beat's check does after a write that bypassed the state machine."""
    from shared.counters import JobCounters
    from shared.jobs import now

    db.jobs.update_one({"_id": job_id}, {"$set": {"status": status, **fields}})
    JobCounters(db).repair(now(), settle_seconds=0)


def catalog_crawl(site: Any) -> dict:
    """POST /jobs body: the demo catalog, one item per product, page after page (one at a time)."""
    return {
        "url": site.url_for("/catalog/"),
        "engine": "scrapy",
        "selectors": {"sku": "./@data-sku"},
        "config": {
            "item_selector": "div.product",
            "follow_links": True,
            "link_selector": "li.next a",
            "concurrency": 1,
        },
    }


def register_user(client: Any, username: str | None = None, password: str = "s3cret-pass") -> dict:
    """Register and log in a user through a Flask test client; its auth headers."""
    username = username or f"u{uuid.uuid4().hex[:10]}"
    answer = client.post(
        "/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.test", "password": password},
    )
    assert answer.status_code == 201, answer.get_json()
    token = client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    ).get_json()
    return {"Authorization": f"Bearer {token['access_token']}"}


class OwnRedis:
    """A redis-server of one test module, which its tests may SIGKILL and bring back, empty (a
    fresh directory: nothing of the killed one comes back) or on its files."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = embedded.free_port()
        self.runs = 0
        self.service = self._start(fresh=True)

    def _start(self, fresh: bool) -> embedded.Service:
        if fresh:
            self.runs += 1
        return embedded.start_redis(self.workdir / f"run{self.runs}", self.port)

    @property
    def url(self) -> str:
        return self.service.url

    def kill(self) -> None:
        if self.service.proc.poll() is None:
            self.service.proc.send_signal(signal.SIGKILL)
        self.service.proc.wait(10)

    def start(self, fresh: bool = True) -> None:
        self.service = self._start(fresh)

    def stop(self) -> None:
        self.service.stop()


class Stack:
    """Real processes: gunicorn serving the API and Celery workers, on one database."""

    def __init__(self, redis_url: str, mongo_url: str, db_name: str, workdir: Path):
        self.workdir = Path(workdir)
        self.redis = RedisLease(redis_url, self.workdir)  # given back by stop()
        self.redis_url = self.redis.url
        self.mongo_url = mongo_url
        self.db_name = db_name
        self.port = embedded.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.egress_log = self.workdir / "egress-outside-loopback.log"

    # -- processes ------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            ENV="test",
            REDIS_URL=self.redis_url,
            MONGO_URL=self.mongo_url,
            MONGO_DB=self.db_name,
            API_PORT=str(self.port),
            LOG_LEVEL="INFO",
            PROGRESS_INTERVAL_SECONDS="0.2",
            RATE_LIMIT_ENABLED="false",
            # testing/egress_guard/sitecustomize.py records any reach outside loopback
            PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'testing' / 'egress_guard'}",
            EGRESS_GUARD_LOG=str(self.egress_log),
            PYTHONUNBUFFERED="1",
        )
        env.update(getattr(self, "extra_env", {}))
        env.update(extra)
        return env

    def spawn(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env(**env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def start_worker(
        self, queue: str, concurrency: int = 1, name: str | None = None, **env: str
    ) -> subprocess.Popen:
        name = name or f"worker-{queue}"
        proc = self.spawn(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "-Q",
                queue,
                "-c",
                str(concurrency),
                "-n",
                f"{name}-{uuid.uuid4().hex[:6]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            **env,
        )
        wait_for(lambda: self._ready(name, proc), 60, message=f"{name} ready")
        return proc

    def start_scheduler(self, **env: str) -> subprocess.Popen:
        """The cron scheduler process (workers/scheduler.py), once it says it is ready."""
        proc = self.spawn("scheduler", [sys.executable, "-m", "workers.scheduler"], **env)
        wait_for(
            lambda: "scheduler ready" in self.logs["scheduler"].read_text(),
            30,
            message="scheduler ready",
        )
        return proc

    def _ready(self, name: str, proc: subprocess.Popen) -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited: {self.logs[name].read_text()[-3000:]}")
        return " ready." in self.logs[name].read_text(errors="replace")

    def start_api(self) -> None:
        from api.__main__ import gunicorn_args
        from shared.settings import Settings

        argv = gunicorn_args(Settings(), f"127.0.0.1:{self.port}", workers=1)
        proc = self.spawn("api", argv)

        def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"api exited: {self.logs['api'].read_text()[-3000:]}")
            try:
                return requests.get(f"{self.base}/api/v1/health", timeout=1).ok
            except requests.RequestException:
                return False

        wait_for(healthy, 60, message="API healthy")

    def start(self, api: bool = True, queues: tuple[str, ...] = ("scrapy",), **env: str) -> None:
        redis.Redis.from_url(self.redis_url).flushdb()
        self.extra_env = env
        if api:
            self.start_api()
        for queue in queues:
            self.start_worker(queue)

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left in its group
        proc.wait(5)

    def stop(self) -> None:
        for name in list(self.procs):
            self.stop_process(name)
        self.redis.release()  # after its processes: none of them still uses it
        with pymongo.MongoClient[dict](self.mongo_url, serverSelectionTimeoutMS=3000) as c:
            c.drop_database(self.db_name)
        self.assert_no_outbound()

    def outbound(self) -> list[str]:
        """What the stack's processes tried to reach outside loopback (see egress_guard)."""
        if not self.egress_log.exists():
            return []
        return self.egress_log.read_text().splitlines()

    def assert_no_outbound(self) -> None:
        attempts = self.outbound()
        assert not attempts, "the service reached outside loopback:\n" + "\n".join(attempts[:20])

    # -- HTTP -----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.base}/api/v1{path}"

    def register(self, username: str | None = None, password: str = "s3cret-pass") -> dict:
        username = username or f"u{uuid.uuid4().hex[:10]}"
        answer = requests.post(
            self.url("/auth/register"),
            timeout=10,
            json={"username": username, "email": f"{username}@example.test", "password": password},
        )
        assert answer.status_code == 201, answer.text
        return self.login(username, password)

    def login(self, username: str, password: str) -> dict:
        """The Authorization header of `username`'s fresh access token."""
        answer = requests.post(
            self.url("/auth/login"), timeout=10, json={"username": username, "password": password}
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def user_id(self, headers: dict) -> str:
        """The id of the account `headers` belong to."""
        return requests.get(self.url("/auth/me"), headers=headers, timeout=10).json()["id"]

    def submit(self, headers: dict, **spec: Any) -> dict:
        answer = requests.post(self.url("/jobs"), json=spec, headers=headers, timeout=10)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def job(self, job_id: str, headers: dict) -> dict:
        return requests.get(self.url(f"/jobs/{job_id}"), headers=headers, timeout=10).json()

    def wait_job(
        self,
        job_id: str,
        headers: dict,
        statuses=("completed", "failed", "cancelled"),
        timeout: float = 60,
    ) -> dict:
        return wait_for(
            lambda: (lambda j: j if j.get("status") in statuses else None)(
                self.job(job_id, headers)
            ),
            timeout,
            interval=0.1,
            message=f"job {job_id} in {statuses}",
        )

    def database(self) -> Any:
        if not hasattr(self, "_client"):
            self._client: pymongo.MongoClient = pymongo.MongoClient(self.mongo_url)
        return self._client[self.db_name]

    def celery(self) -> Any:
        """A Celery client on the stack's broker, to send tasks by name as the API does."""
        from celery import Celery

        from shared import tasks

        app = Celery("stack-client")
        app.conf.update(
            broker_url=self.redis_url, broker_transport_options=tasks.broker_transport_options(3600)
        )
        return app

    def children(self, name: str) -> list[int]:
        """Pids of the direct children of process `name` (a worker's pool processes)."""
        pid = self.procs[name].pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]
