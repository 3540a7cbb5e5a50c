"""How a user's egg runs: a fresh process (`python -m scrapers.spider_child`) in a sandbox.

The sandbox is what this module controls from outside the user's code:
- an environment built from an allow-list (no MONGO_URL, REDIS_URL, JWT_SECRET_KEY, …);
- a temporary directory of its own as HOME, TMPDIR and working directory, holding the egg;
- when the service runs as root, an unprivileged user (SPIDER_RUN_AS_USER, `nobody`), so the
  service's files (var/: the JWT and Flower secrets, the embedded store) are unreadable;
- resource limits, applied by the child before it loads the egg (RLIMIT_AS from
  SPIDER_MAX_MEMORY_MB, RLIMIT_CPU, open files, core dumps off);
- a session of its own, so stopping it stops whatever it started.

The child reads one JSON request on stdin and answers with JSON lines on stdout (its own
copy of the original stdout: the user's code writing to stdout lands in stderr). The parent
trusts nothing of it beyond JSON objects of bounded size (`SpiderProcess.messages`).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import pwd
import queue
import shutil
import signal
import site
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from shared.settings import ROOT

CHILD_MODULE = "scrapers.spider_child"
MAX_LINE_BYTES = 8 * 1024 * 1024  # one message (an item is capped well below this)
STDERR_TAIL_BYTES = 16 * 1024
# what the child inherits of the service's environment: locale and time zone, nothing else
ENV_ALLOW = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
_EOF = object()


class SandboxError(RuntimeError):
    """The sandbox could not be set up or its child failed; the message is for the user."""


@dataclass(frozen=True)
class Limits:
    """What one child may use."""

    memory_mb: int = 1024  # address space (RLIMIT_AS); 0: unlimited
    cpu_seconds: int = 0  # CPU time (RLIMIT_CPU); 0: unlimited
    open_files: int = 1024
    file_bytes: int = 256 * 1024 * 1024  # largest file it may write (RLIMIT_FSIZE)

    @classmethod
    def from_settings(cls, settings: Any, cpu_seconds: int = 0) -> Limits:
        return cls(memory_mb=int(settings.spider_max_memory_mb), cpu_seconds=cpu_seconds)


@dataclass(frozen=True)
class Policy:
    """The target policy as the child rebuilds it (shared.targets.TargetPolicy)."""

    block_private: bool = True
    allowlist: str = ""
    own_ports: list[int] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        from shared.targets import TargetPolicy

        policy = TargetPolicy.from_settings(settings)
        return cls(
            block_private=policy.block_private,
            allowlist=str(getattr(settings, "target_allowlist", "") or ""),
            own_ports=sorted(policy.own_ports),
        )

    def target_policy(self) -> Any:
        from shared.targets import TargetPolicy, parse_allowlist

        return TargetPolicy(
            block_private=self.block_private,
            allow=parse_allowlist(self.allowlist),
            own_ports=frozenset(int(p) for p in self.own_ports),
        )


def run_as(settings: Any) -> tuple[int, int] | None:
    """(uid, gid) the child runs as: SPIDER_RUN_AS_USER when this process is root, else None
    (an unprivileged service runs its children as itself)."""
    if os.geteuid() != 0:
        return None
    name = str(getattr(settings, "spider_run_as_user", "nobody") or "")
    if not name:
        raise SandboxError(
            "the service runs as root: set SPIDER_RUN_AS_USER to an unprivileged user"
        )
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SandboxError(f"SPIDER_RUN_AS_USER={name}: no such user") from None
    if entry.pw_uid == 0:
        raise SandboxError(f"SPIDER_RUN_AS_USER={name} is root")
    return entry.pw_uid, entry.pw_gid


def _reachable_by_others(path: str) -> bool:
    """Whether a user of no group of ours can execute `path` (every directory above it
    searchable by others, the file executable by others)."""
    real = Path(os.path.realpath(path))
    try:
        if not real.stat().st_mode & stat.S_IXOTH:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)
    except OSError:
        return False


def interpreter(settings: Any, user: tuple[int, int] | None) -> tuple[str, list[str]]:
    """The Python the child runs and the extra import paths it needs: SPIDER_PYTHON, else this
    process's own; when dropping to another user who cannot reach it (an interpreter under a
    home directory such as /root), the system's Python of the same version with this
    environment's site-packages."""
    chosen = str(getattr(settings, "spider_python", "") or "")
    if chosen:
        return chosen, []
    if user is None or _reachable_by_others(sys.executable):
        return sys.executable, []
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if os.path.exists(candidate) and _reachable_by_others(candidate):
            return candidate, [p for p in site.getsitepackages() if os.path.isdir(p)]
    raise SandboxError(
        f"{sys.executable} cannot be run by SPIDER_RUN_AS_USER, and no python{version} "
        "outside home directories was found: set SPIDER_PYTHON"
    )


def environment(home: str, extra_paths: list[str]) -> dict[str, str]:
    """The child's whole environment: the allow-list and what the sandbox sets itself."""
    env = {name: os.environ[name] for name in ENV_ALLOW if name in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": home,
            "PYTHONPATH": os.pathsep.join([str(ROOT), *extra_paths]),
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            # glibc reserves an arena per thread (64 MiB of address space each): with
            # RLIMIT_AS, a few threads would exhaust the limit before the spider allocates
            "MALLOC_ARENA_MAX": "2",
        }
    )
    if extra_paths:
        env["SCRAPEMASTER_SITE_DIRS"] = os.pathsep.join(extra_paths)  # .pth files (spider_child)
    return env


class SpiderProcess:
    """One run of an egg in a fresh sandboxed process. Use as a context manager: leaving it
    stops the process (and anything it started) and removes its directory."""

    def __init__(
        self,
        egg: bytes,
        request: dict[str, Any],
        *,
        limits: Limits,
        policy: Policy,
        settings: Any,
    ) -> None:
        self.user = run_as(settings)
        self.python, extra = interpreter(settings, self.user)
        self.home = tempfile.mkdtemp(prefix="spider-")
        try:
            egg_path = os.path.join(self.home, "project.egg")
            with open(egg_path, "wb") as out:
                out.write(egg)
            if self.user is not None:
                os.chown(self.home, *self.user)
                os.chown(egg_path, *self.user)
            os.chmod(self.home, 0o700)
            body = {
                **request,
                "egg": egg_path,
                "limits": asdict(limits),
                "policy": asdict(policy),
            }
            kwargs: dict[str, Any] = {}
            if self.user is not None:
                kwargs.update(user=self.user[0], group=self.user[1], extra_groups=[])
            self.proc = subprocess.Popen(  # noqa: S603 - our own program, fixed arguments
                [self.python, "-s", "-m", CHILD_MODULE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.home,
                env=environment(self.home, extra),
                start_new_session=True,  # its own process group: stopped as a whole
                close_fds=True,
                **kwargs,
            )
        except BaseException:
            shutil.rmtree(self.home, ignore_errors=True)
            raise
        self.pid = self.proc.pid
        self._messages: queue.Queue[Any] = queue.Queue(maxsize=1000)
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_size = 0
        self.dropped = 0  # lines that were not JSON objects or too long
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        threading.Thread(target=self._read_out, args=(self.proc.stdout,), daemon=True).start()
        self._err_thread = threading.Thread(
            target=self._read_err, args=(self.proc.stderr,), daemon=True
        )
        self._err_thread.start()
        try:
            self.proc.stdin.write(json.dumps(body).encode())
            self.proc.stdin.close()
        except OSError:
            pass  # died at once: its stderr says why

    # -- reading ------------------------------------------------------------------------
    def _read_out(self, stream: IO[bytes]) -> None:
        try:
            while True:
                line = stream.readline(MAX_LINE_BYTES + 1)
                if not line:
                    break
                if len(line) > MAX_LINE_BYTES:
                    self.dropped += 1
                    while line and not line.endswith(b"\n"):  # skip the rest of it
                        line = stream.readline(MAX_LINE_BYTES)
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    self.dropped += 1
                    continue
                if isinstance(message, dict) and isinstance(message.get("t"), str):
                    self._messages.put(message)
                else:
                    self.dropped += 1
        finally:
            self._messages.put(_EOF)

    def _read_err(self, stream: IO[bytes]) -> None:
        for chunk in iter(lambda: stream.read1(4096), b""):  # type: ignore[attr-defined]
            self._tail.append(chunk)
            self._tail_size += len(chunk)
            while self._tail_size > STDERR_TAIL_BYTES and len(self._tail) > 1:
                self._tail_size -= len(self._tail.popleft())

    def stderr_tail(self, lines: int = 20) -> str:
        """The last lines the child wrote to stderr (tracebacks, the user's prints)."""
        self._err_thread.join(timeout=1)
        text = b"".join(self._tail).decode("utf-8", "replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def messages(self, timeout: float) -> Iterator[dict[str, Any] | None]:
        """The child's messages as they come; None every `timeout` seconds without one (so
        the caller can check deadlines and cancellation); ends when its stdout closes."""
        while True:
            try:
                message = self._messages.get(timeout=timeout)
            except queue.Empty:
                yield None
                continue
            if message is _EOF:
                return
            yield message

    # -- stopping -----------------------------------------------------------------------
    def rss_bytes(self) -> int:
        """Resident memory of the child now (0 when gone)."""
        try:
            with open(f"/proc/{self.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM to its process group, SIGKILL after `grace` seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # whatever it started and left behind

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def __enter__(self) -> SpiderProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.stop(grace=1.0)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        for stream in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                if stream:
                    stream.close()
        shutil.rmtree(self.home, ignore_errors=True)


def exit_description(code: int | None) -> str:
    """A child's exit status in words."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def list_spiders(egg: bytes, *, timeout: float, settings: Any | None = None) -> list[str]:
    """The names of the spiders in `egg` (its project's SpiderLoader, as Scrapyd's
    listspiders.json), run in the sandbox. Raises SandboxError with the child's stderr tail
    when it fails or takes longer than `timeout` seconds."""
    if settings is None:
        from shared.settings import get_settings

        settings = get_settings()
    deadline = time.monotonic() + timeout
    with SpiderProcess(
        egg,
        {"action": "list"},
        limits=Limits.from_settings(settings, cpu_seconds=max(1, int(timeout) + 1)),
        policy=Policy.from_settings(settings),
        settings=settings,
    ) as child:
        names: list[str] | None = None
        error: str | None = None
        for message in child.messages(timeout=0.2):
            if time.monotonic() > deadline:
                child.stop(grace=0.5)
                raise SandboxError(
                    f"listing the spiders took longer than {timeout:g} s"
                    + _tail_suffix(child.stderr_tail())
                )
            if message is None:
                continue
            if message["t"] == "spiders" and isinstance(message.get("names"), list):
                names = [str(n) for n in message["names"]][:10_000]
            elif message["t"] == "error":
                error = str(message.get("message") or "failed")[:2000]
        code = child.wait(timeout=max(0.5, deadline - time.monotonic()))
        if names is not None and code == 0:
            return names
        why = error or f"the project could not be loaded ({exit_description(code)})"
        raise SandboxError(why + _tail_suffix(child.stderr_tail()))


def _tail_suffix(tail: str) -> str:
    return f":\n{tail}" if tail else ""
