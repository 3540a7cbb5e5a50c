"""Liveness files: a worker, beat or scheduler proves it is not hung by touching a file.

Each process touches LIVENESS_FILE from its main loop (a worker's event loop, beat's tick, the
scheduler's tick), never from a thread of its own, so a process that is stopped (SIGSTOP) or
whose loop is stuck stops touching it. Whoever supervises it (`make run`, the Kubernetes
liveness probe, the compose healthcheck) replaces the process once the file is older than
LIVENESS_TIMEOUT_SECONDS. A file, not Redis: a Redis outage must not look like a hang.

`python -m shared.liveness [FILE]` is the probe: exit 0 while the file is fresh, else 1 with
the reason. With `--kill` it also SIGKILLs the hung process (the file holds its pid), for Docker
Compose, which only marks a container unhealthy: the container's main process then exits and
`restart: unless-stopped` starts a new one. A file not written yet (still starting) is never
a reason to kill.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path


def interval(timeout_seconds: float) -> float:
    """How often a process touches its file: several times per timeout, at most every 5 s."""
    return max(0.2, min(5.0, timeout_seconds / 6))


def touch(path: str | os.PathLike[str]) -> None:
    """Mark `path` as fresh now (created holding this process's pid); never raises."""
    target = Path(path)
    with contextlib.suppress(OSError):
        try:
            os.utime(target)
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"{os.getpid()}\n")


def owner(path: str | os.PathLike[str]) -> int | None:
    """The pid of the process that touches `path`, if the file names one."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 1 else None


def age(path: str | os.PathLike[str], now: float | None = None) -> float | None:
    """Seconds since `path` was last touched, or None when it does not exist."""
    try:
        modified = os.stat(path).st_mtime
    except OSError:
        return None
    return max(0.0, (time.time() if now is None else now) - modified)


class Heartbeat:
    """Touches the file at most every `interval` seconds, however often `beat()` is called."""

    def __init__(self, path: str, timeout_seconds: float) -> None:
        self.path = path
        self.every = interval(timeout_seconds)
        self._last = 0.0

    @classmethod
    def from_settings(cls, settings: object) -> Heartbeat | None:
        path = str(getattr(settings, "liveness_file", "") or "")
        timeout = float(getattr(settings, "liveness_timeout_seconds", 0) or 0)
        return cls(path, timeout) if path and timeout > 0 else None

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            touch(self.path)
            self._last = now


def check(path: str, timeout_seconds: float) -> tuple[bool, str]:
    """(alive, message) for the process that touches `path`."""
    seconds = age(path)
    if seconds is None:
        return False, f"not alive: {path} does not exist (the process has not started its loop)"
    if seconds > timeout_seconds:
        return False, f"not alive: {path} touched {seconds:.0f} s ago (> {timeout_seconds:g} s)"
    return True, f"alive: {path} touched {seconds:.1f} s ago"


def main(argv: list[str] | None = None) -> int:
    from shared.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m shared.liveness", description=__doc__)
    parser.add_argument("file", nargs="?", help="the liveness file (default: LIVENESS_FILE)")
    parser.add_argument("--max-age", type=float, help="seconds (LIVENESS_TIMEOUT_SECONDS)")
    parser.add_argument(
        "--kill", action="store_true", help="SIGKILL the process of a stale file (compose)"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    path = args.file or settings.liveness_file
    if not path:
        print("not alive: no liveness file (set LIVENESS_FILE)", flush=True)
        return 1
    alive, message = check(path, args.max_age or settings.liveness_timeout_seconds)
    print(message, flush=True)
    if not alive and args.kill:
        kill_hung(path)
    return 0 if alive else 1


def kill_hung(path: str) -> None:
    """SIGKILL the process named in stale `path` (SIGTERM waits while a process is stopped)."""
    pid = owner(path)
    if pid is None:  # not started its loop yet: starting is not hanging
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
        print(f"killed {pid}: a new one takes its place", flush=True)


if __name__ == "__main__":
    sys.exit(main())
