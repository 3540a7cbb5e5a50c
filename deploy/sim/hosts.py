"""Processes on the simulated hosts: started with the project's own command lines, each in its
host's network namespace under the host's own name (a UTS namespace, as a container has), and
restarted when they exit, as compose's `restart: unless-stopped` does."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from deploy.sim.net import Network

RESTART_PAUSE = 1.0


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM from the kernel when the harness dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Proc:
    host: str
    name: str
    command: str
    env: dict[str, str]
    log: Path
    restart: bool = True
    popen: subprocess.Popen | None = None
    starts: int = 0
    stopped: bool = False
    restart_at: float = 0.0
    exits: list[int] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class Hosts:
    """Starts, restarts and stops the processes of every host of a Network."""

    def __init__(self, net: Network, workdir: Path, root: Path) -> None:
        self.net, self.workdir, self.root = net, workdir, root
        self.procs: list[Proc] = []
        self.lost: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(
        self, host: str, name: str, command: str, env: dict[str, str], restart: bool = True
    ) -> Proc:
        proc = Proc(host, name, command, env, self.workdir / f"{host}.{name}.log", restart)
        self._launch(proc)
        with self._lock:
            self.procs.append(proc)
        return proc

    def _launch(self, proc: Proc) -> None:
        script = f"hostname {shlex.quote(proc.host)} && exec {proc.command}"
        argv = ["ip", "netns", "exec", self.net.namespace(proc.host)]
        argv += ["unshare", "--uts", "bash", "-c", script]
        with open(proc.log, "ab") as out:
            proc.popen = subprocess.Popen(
                argv,
                cwd=self.root,
                env=proc.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        proc.starts += 1

    def supervise(self) -> None:
        """Restart exited processes from a thread, until `stop_all`."""
        self._thread = threading.Thread(target=self._watch, name="sim-supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            with self._lock:
                procs = list(self.procs)
            for proc in procs:
                if proc.popen is None or proc.alive or proc.stopped or not proc.restart:
                    continue
                if proc.host in self.lost:
                    continue
                code = proc.popen.returncode
                if len(proc.exits) < proc.starts:
                    proc.exits.append(code)
                    proc.restart_at = time.monotonic() + RESTART_PAUSE
                elif time.monotonic() >= proc.restart_at:
                    self._launch(proc)

    def find(self, host: str, name: str) -> Proc:
        return next(p for p in self.procs if p.host == host and p.name == name)

    def stop(self, proc: Proc, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Stop one process for good (the main process only, as an orchestrator does)."""
        proc.stopped = True
        if proc.popen is None:
            return None
        if proc.alive:
            with contextlib.suppress(ProcessLookupError):
                proc.popen.send_signal(sig)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(10)
        return proc.popen.returncode

    def lose(self, host: str) -> int:
        """The host vanishes: its cable is cut first (no goodbye reaches the others), then every
        process in it is killed. How many processes died."""
        self.lost.add(host)
        for proc in self.procs:
            if proc.host == host:
                proc.stopped = True
        self.net.cut(host)
        killed = self.net.kill(host, signal.SIGKILL)
        for proc in self.procs:
            if proc.host == host and proc.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(10)
        return killed

    def restarts(self) -> dict[str, int]:
        """Restarts per `host/name` (processes that exited by themselves)."""
        return {f"{p.host}/{p.name}": p.starts - 1 for p in self.procs if p.starts > 1}

    def stop_all(self, timeout: float = 20) -> None:
        """SIGTERM every process, wait, SIGKILL every process left in every namespace."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for proc in self.procs:
            proc.stopped = True
            if proc.alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            if proc.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(max(0.1, deadline - time.monotonic()))
        for host in list(self.net.hosts):
            self.net.kill(host, signal.SIGKILL)
        for proc in self.procs:
            if proc.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(5)
