"""`make run`: the whole service on one machine, supervised, from the one process list.

Runs every process of `deploy/Procfile` (the list compose mirrors), with Redis and MongoDB
started when missing. A process that dies is restarted with back-off instead of taking the
service down. Ctrl-C, SIGTERM or SIGHUP stop everything once; if this supervisor itself is
killed, a reaper process (in a session of its own, holding the other end of a pipe) kills every
process group it started, and each direct child also gets SIGTERM from the kernel
(PR_SET_PDEATHSIG); the reaper gives them the same grace as a normal stop. A worker, beat or
scheduler that stops touching its liveness file (shared/liveness.py) for LIVENESS_TIMEOUT_SECONDS
is hung (stopped, stuck): its process group is killed and it is restarted. A second instance
refuses to start when its var/ directory, its ports or its Redis database are taken, naming
the setting to change: it never shares another's store or beat.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy import embedded  # noqa: E402
from shared import liveness  # noqa: E402
from shared.db import ping  # noqa: E402
from shared.settings import FLOWER_PASSWORD_FILE, Settings  # noqa: E402
from shared.targets import listens_beyond_loopback  # noqa: E402

PROCFILE = ROOT / "deploy" / "Procfile"
COLORS = ["36", "33", "35", "32", "34", "31", "96", "94"]
INSTANCE_ENV = "SCRAPEMASTER_INSTANCE"  # every process of one `make run` carries it
LOCK_KEY = "scrapemaster:instance"  # in the Redis database: one instance per broker
LOCK_TTL = 15
BACKOFF_MAX = 10.0
CRASH_LOOP_SECONDS = 5.0  # dying sooner than this after a start counts as a crash loop
STOP_GRACE = 15.0  # beyond WORKER_SHUTDOWN_GRACE_SECONDS: a running job is handed back first
# Until its first heartbeat a process is starting (imports; a beat waiting up to
# BEAT_LOCK_TIMEOUT_SECONDS for the lock a killed beat held): it gets at least this long.
STARTUP_ALLOWANCE = 120.0
# Secrets only the API (or Flower) uses: never in a worker's environment, where a job's page
# could get at them.
API_SECRETS = ("JWT_SECRET_KEY", "ADMIN_USERNAME", "ADMIN_PASSWORD", "ADMIN_EMAIL")
FLOWER_SECRETS = ("FLOWER_PASSWORD", "FLOWER_BASIC_AUTH")
# Opens the jobs' sealed secrets (shared/vault.py): the API and the crawl workers only.
CRAWL_SECRETS = ("SECRETS_KEY",)
CRAWL_PROCESSES = ("api", "worker-scrapy", "worker-playwright")


class Refused(RuntimeError):
    """This instance must not start; the message says why and which setting to change."""


def say(message: str) -> None:
    print(f"\033[1mscrapemaster\033[0m | {message}", flush=True)


def read_procfile(path: Path = PROCFILE) -> dict[str, str]:
    """`name: command` lines of a Procfile, in order."""
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())
        if match and not line.lstrip().startswith("#"):
            entries[match.group(1)] = match.group(2)
    return entries


def env_for(name: str, base: dict[str, str], flower_auth: str) -> dict[str, str]:
    """The environment of process `name`: only the secrets that process uses."""
    hidden = API_SECRETS + FLOWER_SECRETS + CRAWL_SECRETS
    env = {k: v for k, v in base.items() if k not in hidden}
    if name in CRAWL_PROCESSES:
        env.update({k: base[k] for k in CRAWL_SECRETS if k in base})
    if name == "api":
        env.update({k: base[k] for k in API_SECRETS if k in base})
    if name == "flower":
        user, _, password = flower_auth.partition(":")
        env.update(FLOWER_USER=user, FLOWER_PASSWORD=password)
    return env


# -- dying with the supervisor ----------------------------------------------------------------


def _die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM to this child when the supervisor dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def reaper_main(grace: float) -> None:
    """`local.py --reaper`: read process groups from stdin; at EOF (the supervisor is gone,
    however it died) SIGTERM them, then SIGKILL what is left after `grace` seconds (a normal
    stop's: WORKER_SHUTDOWN_GRACE_SECONDS to hand running jobs back, and a margin). `clear`
    forgets them all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole terminal group
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin:
        word = line.strip()
        if word == "clear":
            groups.clear()
        elif word.startswith("-") and word[1:].isdigit():
            groups.discard(int(word[1:]))
        elif word.isdigit():
            groups.add(int(word))
    for sig, pause in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, sig)
        deadline = time.monotonic() + pause
        while pause and time.monotonic() < deadline and any(_group_alive(g) for g in groups):
            time.sleep(0.1)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class Reaper:
    """The supervisor's end of the reaper's pipe."""

    def __init__(self, grace: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--reaper", "--grace", f"{grace:g}"],
            stdin=subprocess.PIPE,
            start_new_session=True,
            text=True,
        )

    def watch(self, group: int) -> None:
        self._send(str(group))

    def forget(self, group: int) -> None:
        self._send(f"-{group}")

    def _send(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()

    def close(self) -> None:
        """Normal stop: everything is already stopped, so the reaper kills nothing."""
        self._send("clear")
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


# -- refusing to share --------------------------------------------------------------------------


def lock_var_dir(var: Path) -> Any:
    """An exclusive lock on var/ held for the life of this process."""
    var.mkdir(parents=True, exist_ok=True)
    handle = open(var / "run.lock", "a+")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        raise Refused(
            f"{var} is in use by another `make run` ({owner}); stop it, or set VAR_DIR "
            "(and the ports) for a second instance"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


def check_ports(settings: Settings, embedded_mongo: bool) -> None:
    """Refuse when a port this instance must listen on is taken."""
    wanted = [("API_PORT", settings.api_host, settings.api_port)]
    wanted.append(("FLOWER_PORT", settings.flower_host, settings.flower_port))
    if embedded_mongo:
        wanted.append(("EMBEDDED_MONGO_PORT", "127.0.0.1", settings.embedded_mongo_port))
    for setting, host, port in wanted:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                raise Refused(
                    f"port {port} ({setting}) is already in use, maybe by another instance; "
                    f"stop it or set {setting}"
                ) from None


class InstanceLock:
    """One instance per Redis database: two would consume each other's tasks and run two
    beats. SET NX with a TTL, refreshed while this instance lives."""

    def __init__(self, url: str, owner: dict[str, Any]) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
        self.url = url
        self.value = json.dumps(owner)

    def acquire(self) -> None:
        if self.client.set(LOCK_KEY, self.value, nx=True, ex=LOCK_TTL):
            return
        holder = self.client.get(LOCK_KEY)
        # left by an instance of this host that was killed hard: take it over
        if (
            holder is not None
            and _dead_local_owner(holder)
            and self.client.set(LOCK_KEY, self.value, ex=LOCK_TTL, xx=True)
        ):
            return
        raise Refused(
            f"another ScrapeMaster instance uses {self.url} ({(holder or b'?').decode()}); "
            "stop it, or set REDIS_URL to another database (e.g. redis://127.0.0.1:6379/1)"
        )

    def refresh(self) -> None:
        with contextlib.suppress(Exception):  # Redis down: its restart is handled elsewhere
            if self.client.get(LOCK_KEY) in (None, self.value.encode()):
                self.client.set(LOCK_KEY, self.value, ex=LOCK_TTL)

    def release(self) -> None:
        with contextlib.suppress(Exception):
            if self.client.get(LOCK_KEY) == self.value.encode():
                self.client.delete(LOCK_KEY)


def _dead_local_owner(holder: bytes) -> bool:
    try:
        owner = json.loads(holder)
    except ValueError:
        return False
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return False
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# -- supervision --------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    command: str
    env: dict[str, str]
    color: str
    proc: subprocess.Popen | None = None
    started: float = 0.0
    backoff: float = 1.0
    restart_at: float | None = None
    restarts: int = 0
    liveness: Path | None = None  # the file it touches from its main loop (LIVENESS_FILE)
    liveness_timeout: float = 0.0  # 0: never judged hung

    def start(self, reaper: Reaper) -> None:
        if self.liveness is not None:
            # a new start proves nothing yet: the last run's file must not vouch for it
            self.liveness.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            ["bash", "-c", f"exec {self.command}"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        reaper.watch(self.proc.pid)
        self.started = time.monotonic()
        self.restart_at = None
        pump = threading.Thread(target=_pump, args=(self.name, self.color, self.proc), daemon=True)
        pump.start()

    def check(self, reaper: Reaper, now: float) -> None:
        """Restart a dead process: at once after a long run, with growing back-off when it keeps
        dying right after its start (a crash loop)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            stale = self.hung(now)
            if stale is not None:
                say(
                    f"{self.name} is hung: no liveness heartbeat for {stale:.0f} s "
                    f"(LIVENESS_TIMEOUT_SECONDS={self.liveness_timeout:g}); killing it"
                )
                # SIGKILL: a stopped process would hold SIGTERM until continued; its jobs
                # are taken over as a dead worker's (stale heartbeat, unacknowledged message)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            return
        if self.restart_at is None:
            code = self.proc.returncode
            if now - self.started >= CRASH_LOOP_SECONDS:
                self.backoff = 1.0  # it ran fine for a while: not a crash loop
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # its pool children, if any survived
            reaper.forget(self.proc.pid)
            self.restart_at = now + self.backoff
            say(f"{self.name} exited with code {code}; restarting in {self.backoff:.0f} s")
            self.backoff = min(BACKOFF_MAX, self.backoff * 2)
        elif now >= self.restart_at:
            self.restarts += 1
            self.start(reaper)

    def hung(self, now: float) -> float | None:
        """Seconds since this running process last proved alive, once past its allowance."""
        if self.liveness is None or self.liveness_timeout <= 0:
            return None
        seconds = liveness.age(self.liveness)
        if seconds is None:  # not in its main loop yet: still starting
            seconds = now - self.started
            return seconds if seconds > max(self.liveness_timeout, STARTUP_ALLOWANCE) else None
        return seconds if seconds > self.liveness_timeout else None


def watched(name: str) -> bool:
    """Whether Procfile entry `name` touches a liveness file: workers, beat and scheduler."""
    return name.startswith("worker") or name in ("beat", "scheduler")


def _pump(name: str, color: str, proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        print(f"\033[{color}m{name:<18}\033[0m| {line}", flush=True)


def stop_all(children: list[Child], grace: float = STOP_GRACE) -> None:
    """SIGTERM every process group, wait for them, SIGKILL what is left."""
    running = [c.proc for c in children if c.proc is not None]
    for proc in running:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left in the group


class Services:
    """Redis and SecantusDB when this instance started them; restarted when they die."""

    def __init__(self, settings: Settings, var: Path, reaper: Reaper) -> None:
        self.settings, self.var, self.reaper = settings, var, reaper
        self.redis: embedded.Service | None = None
        self.mongo: embedded.Service | None = None

    def start_redis(self) -> None:
        port = embedded.redis_port(self.settings.redis_url)
        # watched from its first moment: a supervisor killed while the server starts (a
        # restart after it died) must not leave it behind
        self.redis = embedded.start_redis(self.var / "redis", port, spawned=self.reaper.watch)

    def start_mongo(self) -> None:
        self.mongo = embedded.start_secantus(
            self.var / "mongo",
            self.settings.embedded_mongo_port,
            str(self.var / "secantusdb.log"),
            spawned=self.reaper.watch,
        )

    def check(self) -> None:
        for name, service, start in (
            ("redis-server", self.redis, self.start_redis),
            ("SecantusDB", self.mongo, self.start_mongo),
        ):
            if service is not None and service.proc.poll() is not None:
                say(f"{name} exited with code {service.proc.returncode}; restarting it")
                try:
                    start()
                except RuntimeError as exc:
                    say(f"{name} did not restart: {exc}; trying again")

    def stop(self) -> None:
        for service in (self.mongo, self.redis):
            if service is not None:
                service.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reaper", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--grace", type=float, default=5.0, help=argparse.SUPPRESS)
    parser.add_argument("--only", help="comma-separated Procfile entries to run (default: all)")
    args = parser.parse_args(argv)
    if args.reaper:
        reaper_main(args.grace)
        return 0

    settings = Settings.from_env()
    var = Path(settings.var_dir)
    stopping = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        if not stopping.is_set():  # once: a second signal must not interrupt the stop
            say(f"{signal.Signals(signum).name}: stopping…")
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, request_stop)

    entries = read_procfile()
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(entries))
        if unknown:
            say(f"unknown process {', '.join(unknown)}; the Procfile has {', '.join(entries)}")
            return 2
        entries = {n: c for n, c in entries.items() if n in wanted}

    try:
        held = lock_var_dir(var)
        check_ports(settings, embedded_mongo=not settings.mongo_url)
    except Refused as exc:
        say(f"refusing to start: {exc}")
        return 2

    instance = uuid.uuid4().hex
    grace = settings.worker_shutdown_grace_seconds + STOP_GRACE  # a stop's, however it comes
    reaper = Reaper(grace)
    services = Services(settings, var, reaper)
    children: list[Child] = []
    lock: InstanceLock | None = None
    bin_dir = str(Path(sys.executable).parent)
    base_env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        VAR_DIR=str(var),
        **{INSTANCE_ENV: instance},
    )
    try:
        if embedded.redis_answers(settings.redis_url):
            say(f"Redis: using {settings.redis_url}")
        else:
            say(f"Redis: nothing answers at {settings.redis_url}; starting redis-server")
            services.start_redis()
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "var": str(var)}
        lock = InstanceLock(settings.redis_url, owner)
        lock.acquire()
        if settings.mongo_url:
            say(f"MongoDB: using MONGO_URL ({'reachable' if ping(settings) else 'NOT reachable'})")
        else:
            say(f"MongoDB: embedded SecantusDB on {settings.embedded_mongo_port}, data in {var}")
            services.start_mongo()
        base_env["MONGO_URL"] = settings.effective_mongo_url
        flower_auth = settings.flower_basic_auth()
        for index, (name, command) in enumerate(entries.items()):
            env = env_for(name, base_env, flower_auth)
            child = Child(name, command, env, COLORS[index % len(COLORS)])
            if watched(name) and settings.liveness_timeout_seconds > 0:
                child.liveness = var / "liveness" / name
                child.liveness_timeout = settings.liveness_timeout_seconds
                env["LIVENESS_FILE"] = str(child.liveness)
            child.start(reaper)
            children.append(child)
        _announce(settings, children, flower_auth, stopping)
        last_refresh = 0.0
        while not stopping.wait(0.5):
            now = time.monotonic()
            services.check()
            for child in children:
                child.check(reaper, now)
            if now - last_refresh > LOCK_TTL / 3:
                lock.refresh()
                last_refresh = now
        return 0
    except Refused as exc:
        say(f"refusing to start: {exc}")
        return 2
    finally:
        stop_all(children, grace)
        services.stop()
        if lock is not None:
            lock.release()
        reaper.close()
        held.close()
        say("all processes stopped")


def _announce(
    settings: Settings, children: list[Child], flower_auth: str, stopping: threading.Event
) -> None:
    """Say "ready" once the API answers and every worker replies to a ping."""
    base = f"http://{settings.api_host}:{settings.api_port}"
    names = {c.name for c in children}
    workers = sorted(n for n in names if n.startswith("worker"))
    deadline = time.monotonic() + 120
    pending = {"api"} & names | set(workers)
    while pending and time.monotonic() < deadline and not stopping.is_set():
        if "api" in pending and _api_up(base):
            pending.discard("api")
        if set(workers) & pending:
            for worker in _workers_answering(settings):
                pending.discard(f"worker-{worker.split('@')[0]}")
        if pending:
            time.sleep(0.5)
    if stopping.is_set():
        return
    if pending:
        say(f"not ready after 120 s: {', '.join(sorted(pending))} not answering; see their logs")
    else:
        say("ready")
    if "api" in names:
        say(f"Web:     {base}/   (the dashboard)")
        say(f"API:     {base}/api/v1   (health: {base}/api/v1/health)")
        say(f"Docs:    {base}/api/docs  ·  {base}/api/redoc  ·  {base}/api/openapi.json")
    if "flower" in names:
        say(flower_line(settings, flower_auth))
    if "api" in names and exposure_note(settings):
        say(exposure_note(settings))
    say("Ctrl-C stops everything.")


def flower_line(settings: Settings, flower_auth: str) -> str:
    """Where Flower is and where its password is kept: never the password itself (a terminal
    is scrolled back, shared and recorded), and the file under the real VAR_DIR."""
    user = flower_auth.split(":", 1)[0]
    if settings.flower_password:
        source = "FLOWER_PASSWORD (as you set it)"
    else:
        source = f"in {Path(settings.var_dir).resolve() / FLOWER_PASSWORD_FILE}"
    where = f"http://{settings.flower_host}:{settings.flower_port}"
    return f"Flower:  {where}  user {user}, password {source}"


def exposure_note(settings: Settings) -> str | None:
    """A warning when the API listens beyond loopback: then private targets are blocked unless
    PRIVATE_TARGETS says otherwise (shared/targets.py)."""
    if not listens_beyond_loopback(settings.api_host):
        return None
    mode = settings.private_targets.strip().lower() or "block (the default when exposed)"
    return (
        f"API_HOST={settings.api_host} is reachable from other machines; "
        f"PRIVATE_TARGETS={mode}, cloud-metadata addresses are always blocked"
    )


def _api_up(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/api/v1/health", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _workers_answering(settings: Settings) -> list[str]:
    """Names (`scrapy@host`) of the workers that answer a ping on this instance's broker."""
    from workers.app import create_celery

    app = create_celery(settings)  # the workers' broker options: replies must match them
    try:
        replies = app.control.ping(timeout=1.0) or []
    except Exception:  # broker not up yet
        return []
    finally:
        app.close()
    return [name for reply in replies for name in reply]


if __name__ == "__main__":
    sys.exit(main())
