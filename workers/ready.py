"""`python -m workers.ready QUEUE`: exit 0 when this host's worker of QUEUE answers a ping.

The readiness and liveness check of a worker container (compose healthcheck, Kubernetes exec
probe): the worker started as `-n QUEUE@%h` (deploy/Procfile) answers a Celery ping sent to it
alone over the broker, so the check proves both that its main process is alive and that it is
connected to Redis. It exits 1 with the reason when the worker does not answer in time or the
broker is unreachable, never hanging longer than the timeout. When LIVENESS_FILE is set and
older than LIVENESS_TIMEOUT_SECONDS (shared/liveness.py), the worker is hung: not ready, and
with `--kill-hung` (compose, which restarts a container only when it exits) it is killed.
"""

from __future__ import annotations

import argparse
import socket
import sys

from shared import liveness
from shared.settings import get_settings


def node_name(queue: str, hostname: str | None = None) -> str:
    """The worker's node name, as `-n QUEUE@%h` makes it (%h: this host's name)."""
    return f"{queue}@{hostname or socket.gethostname()}"


def check(node: str, timeout: float) -> tuple[bool, str]:
    """(ready, message) for the worker `node`."""
    from workers.app import create_celery

    settings = get_settings()
    app = create_celery(settings)  # the workers' broker options: the reply must match them
    app.conf.broker_connection_timeout = timeout
    app.conf.broker_connection_max_retries = 0
    try:
        replies = app.control.ping(destination=[node], timeout=timeout) or []
    except Exception as exc:  # the broker refused or timed out: not ready
        return False, f"not ready: broker unreachable ({type(exc).__name__}: {exc})"
    finally:
        app.close()
    for reply in replies:
        if node in reply:
            return True, f"ready: {node} answers"
    return False, f"not ready: {node} did not answer within {timeout:g} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.ready", description=__doc__)
    parser.add_argument("queue", help="the worker's queue: scrapy, playwright, webhooks, …")
    parser.add_argument("--node", help="the node name to ping (default: QUEUE@this host)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument(
        "--kill-hung", action="store_true", help="SIGKILL the worker if LIVENESS_FILE is stale"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    if settings.liveness_file and liveness.age(settings.liveness_file) is not None:
        alive, message = liveness.check(settings.liveness_file, settings.liveness_timeout_seconds)
        if not alive:
            print(message, flush=True)
            if args.kill_hung:
                liveness.kill_hung(settings.liveness_file)
            return 1
    ready, message = check(args.node or node_name(args.queue), args.timeout)
    print(message, flush=True)
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main())
