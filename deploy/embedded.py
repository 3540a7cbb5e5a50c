"""Start the embedded services a one-machine run needs: SecantusDB and redis-server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from shared.settings import embedded_mongo_url


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis server at `url` answers PING."""
    import redis

    try:
        return bool(
            redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout).ping()
        )
    except Exception:  # any failure means "not usable"
        return False


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s")


class Service:
    """A child process we started and must stop."""

    def __init__(self, name: str, proc: subprocess.Popen, url: str):
        self.name = name
        self.proc = proc
        self.url = url

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_secantus(
    data_dir: str | os.PathLike | None,
    port: int | None = None,
    log_path: str | None = None,
    spawned: Callable[[int], None] | None = None,
) -> Service:
    """A SecantusDB server on 127.0.0.1:`port` with data in `data_dir` (None: in memory).
    `spawned(pid)` is called as soon as the process exists, before it answers (a supervisor
    that dies while the server starts must still have it stopped)."""
    port = port or free_port()
    storage = ":memory:" if data_dir is None else str(data_dir)
    if data_dir is not None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "secantus",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            storage,
            "--log-level",
            "WARNING",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if spawned is not None:
        spawned(proc.pid)
    url = embedded_mongo_url(port)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 60, "SecantusDB", proc)
    except RuntimeError:
        proc.kill()
        raise
    return Service("secantusdb", proc, url)


def redis_server_path() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )


def start_redis(
    data_dir: str | os.PathLike,
    port: int | None = None,
    spawned: Callable[[int], None] | None = None,
) -> Service:
    """A redis-server on 127.0.0.1:`port` keeping its files in `data_dir` (`spawned`: as
    start_secantus's)."""
    binary = redis_server_path()
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = port or free_port()
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data_dir),
            "--save",
            "60 1000",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(Path(data_dir) / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if spawned is not None:
        spawned(proc.pid)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(lambda: redis_answers(url, 0.3), 30, "redis-server", proc)
    except RuntimeError:
        proc.kill()
        raise
    return Service("redis", proc, url)


def redis_port(url: str) -> int:
    return urlsplit(url).port or 6379
