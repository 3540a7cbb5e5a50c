"""`python -m api`: the API on gunicorn with the settings' host, port and worker count.

Workers are gevent's: each process serves thousands of connections, so long-lived event
streams (SSE) never take the request slots other calls need.
"""

from __future__ import annotations

import os
import sys

from shared.settings import Settings, get_settings


def gunicorn_args(settings: Settings, bind: str, workers: int | None = None) -> list[str]:
    """The gunicorn command line of the API (also what the test stack runs)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "api.wsgi:app",
        "--bind",
        bind,
        "--workers",
        str(workers or settings.api_workers),
        "--worker-class",
        "gevent",
        "--worker-connections",
        str(settings.api_connections),
        "--timeout",
        "120",
        "--graceful-timeout",
        "10",
        "--access-logfile",
        "-",
        "--logger-class",
        "api.access_log.RedactingLogger",  # no ?token= in the log
        "--log-level",
        settings.log_level.lower(),
    ]


def main() -> None:
    settings = get_settings()
    args = gunicorn_args(settings, f"{settings.api_host}:{settings.api_port}")
    os.execv(sys.executable, args)


if __name__ == "__main__":
    main()
