"""`make run`: the whole service on one machine, with Redis and MongoDB started when missing.

Starts (or reuses) Redis and MongoDB, then the API, one worker per engine queue, beat and
Flower; prefixes their output with their names; Ctrl-C (or SIGTERM) stops every process it
started, services included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import embedded  # noqa: E402
from shared.db import ping  # noqa: E402
from shared.settings import Settings  # noqa: E402

COLORS = ["36", "33", "35", "32", "34", "31", "96"]
# Secrets only the API (or Flower) uses: never in a worker's environment, where a job's page
# could get at them.
API_SECRETS = ("JWT_SECRET_KEY", "ADMIN_USERNAME", "ADMIN_PASSWORD", "ADMIN_EMAIL")
FLOWER_SECRETS = ("FLOWER_PASSWORD", "FLOWER_BASIC_AUTH")


def env_for(name: str, base: dict[str, str], flower_auth: str) -> dict[str, str]:
    """The environment of process `name`: only the secrets that process uses."""
    env = {k: v for k, v in base.items() if k not in API_SECRETS + FLOWER_SECRETS}
    if name == "api":
        env.update({k: base[k] for k in API_SECRETS if k in base})
    if name == "flower":
        env["FLOWER_BASIC_AUTH"] = flower_auth  # from the environment: not visible in `ps`
    return env


def say(message: str) -> None:
    print(f"\033[1mscrapemaster\033[0m | {message}", flush=True)


def pump(name: str, color: str, stream) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        print(f"\033[{color}m{name:<18}\033[0m| {line}", flush=True)


def commands(settings: Settings) -> dict[str, list[str]]:
    py = sys.executable
    celery = [py, "-m", "celery", "-A", "workers"]
    var = Path(settings.var_dir)
    flower = [
        *celery,
        "flower",
        f"--port={settings.flower_port}",
        f"--address={settings.flower_host}",
    ]
    return {
        "api": [py, "-m", "api"],
        "worker-scrapy": [
            *celery,
            "worker",
            "-Q",
            "scrapy",
            "-n",
            "scrapy@%h",
            "-c",
            str(settings.scrapy_concurrency),
            "--loglevel",
            "INFO",
        ],
        "worker-playwright": [
            *celery,
            "worker",
            "-Q",
            "playwright",
            "-n",
            "playwright@%h",
            "-c",
            str(settings.playwright_concurrency),
            "--loglevel",
            "INFO",
        ],
        "beat": [*celery, "beat", "-s", str(var / "celerybeat-schedule"), "--loglevel", "INFO"],
        "flower": flower,
    }


def main() -> int:
    settings = Settings.from_env()
    var = Path(settings.var_dir)
    var.mkdir(parents=True, exist_ok=True)
    services: list[embedded.Service] = []
    procs: dict[str, subprocess.Popen] = {}
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))

    def shutdown(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shutdown)
    try:
        if embedded.redis_answers(settings.redis_url):
            say(f"Redis: using {settings.redis_url}")
        else:
            port = embedded.redis_port(settings.redis_url)
            say(f"Redis: nothing answers at {settings.redis_url}; starting redis-server on {port}")
            service = embedded.start_redis(var / "redis", port)
            services.append(service)
            env["REDIS_URL"] = settings.redis_url
        if settings.mongo_url:
            say(f"MongoDB: using MONGO_URL ({'reachable' if ping(settings) else 'NOT reachable'})")
        elif ping(settings, 500):
            say(f"MongoDB: reusing the server on port {settings.embedded_mongo_port}")
        else:
            say(
                f"MongoDB: starting embedded SecantusDB on {settings.embedded_mongo_port}, "
                f"data in {var / 'mongo'}"
            )
            services.append(
                embedded.start_secantus(
                    var / "mongo", settings.embedded_mongo_port, str(var / "secantusdb.log")
                )
            )
        env["MONGO_URL"] = settings.effective_mongo_url
        flower_auth = settings.flower_basic_auth()
        for index, (name, argv) in enumerate(commands(settings).items()):
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env_for(name, env, flower_auth),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs[name] = proc
            color = COLORS[index % len(COLORS)]
            threading.Thread(target=pump, args=(name, color, proc.stdout), daemon=True).start()
        base = f"http://{settings.api_host}:{settings.api_port}"
        _announce(base, settings, procs, flower_auth)
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    say(f"{name} exited with code {proc.returncode}; stopping everything")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping…")
        return 0
    finally:
        _stop_all(procs)
        for service in reversed(services):
            service.stop()
        say("all processes stopped")


def _announce(
    base: str, settings: Settings, procs: dict[str, subprocess.Popen], flower_auth: str
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if procs["api"].poll() is not None:
            return
        try:
            with urllib.request.urlopen(f"{base}/api/v1/health", timeout=1) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    say(f"API:     {base}/api/v1   (health: {base}/api/v1/health)")
    say(f"Docs:    {base}/api/docs  ·  {base}/api/redoc  ·  {base}/api/openapi.json")
    user, password = flower_auth.split(":", 1)
    shown = "FLOWER_PASSWORD" if settings.flower_password else f"{password} (var/flower-password)"
    where = f"http://{settings.flower_host}:{settings.flower_port}"
    say(f"Flower:  {where}  user {user}, password {shown}")
    say("Ctrl-C stops everything.")


def _stop_all(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
    for proc in procs.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything left in the group: chromium children


if __name__ == "__main__":
    sys.exit(main())
