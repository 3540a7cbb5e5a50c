"""`python -m api`: the API on gunicorn with the settings' host, port and worker count."""

from __future__ import annotations

import os
import sys

from shared.settings import get_settings


def main() -> None:
    settings = get_settings()
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "api.wsgi:app",
        "--bind",
        f"{settings.api_host}:{settings.api_port}",
        "--workers",
        str(settings.api_workers),
        "--worker-class",
        "gthread",
        "--threads",
        "8",
        "--timeout",
        "120",
        "--graceful-timeout",
        "10",
        "--access-logfile",
        "-",
        "--log-level",
        settings.log_level.lower(),
    ]
    os.execv(sys.executable, args)


if __name__ == "__main__":
    main()
