"""CPU time per simulated host (and per program on it), and the whole machine's, over a span.

A sampler thread reads /proc every second: each process's user+system time, attributed to the
host whose network namespace it is in. A process that ends keeps its last reading, so its time
still counts. The machine's busy time (/proc/stat) shows what other work took meanwhile.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _namespace_inodes(namespaces: dict[str, str]) -> dict[int, str]:
    found = {}
    for host, namespace in namespaces.items():
        try:
            found[os.stat(f"/run/netns/{namespace}").st_ino] = host
        except OSError:
            continue
    return found


def machine_busy() -> tuple[float, float]:
    """(busy seconds, total seconds) of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return (total - idle) / TICK, total / TICK


class Sampler:
    """Cumulative CPU seconds per (host, program, pid), read every `interval` seconds."""

    def __init__(self, namespaces: dict[str, str], interval: float = 1.0) -> None:
        self.namespaces = namespaces  # host -> namespace name (read live: hosts come and go)
        self.interval = interval
        self.seen: dict[int, tuple[str, str, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-cpu", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        inodes = _namespace_inodes(dict(self.namespaces))
        readings = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                host = inodes.get(os.stat(f"/proc/{entry.name}/ns/net").st_ino)
                if host is None:
                    continue
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            rest = stat[stat.rindex(")") + 2 :].split()
            readings[int(entry.name)] = (host, comm, (int(rest[11]) + int(rest[12])) / TICK)
        with self._lock:
            self.seen.update(readings)

    def settle(self, host: str, below: float = 0.05, timeout: float = 30.0) -> float:
        """Wait until `host` uses less than `below` cores over a second (a new worker has done
        starting up); its last reading."""
        deadline = time.monotonic() + timeout
        used = 0.0
        while time.monotonic() < deadline:
            span = Span(self)
            time.sleep(1.0)
            used = span.end().cores(host)
            if used < below:
                break
        return used

    def snapshot(self) -> dict[int, tuple[str, str, float]]:
        self.sample()
        with self._lock:
            return dict(self.seen)


class Span:
    """CPU used between `Span(sampler)` and `end()`: per host, per program, and machine-wide."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.before = sampler.snapshot()
        self.busy0, self.total0 = machine_busy()
        self.t0 = time.monotonic()
        self.by_host: dict[str, float] = {}
        self.by_program: dict[str, float] = {}
        self.wall = 0.0
        self.machine_cores_busy = 0.0

    def end(self) -> Span:
        after = self.sampler.snapshot()
        busy1, total1 = machine_busy()
        self.wall = time.monotonic() - self.t0
        hosts: dict[str, float] = defaultdict(float)
        programs: dict[str, float] = defaultdict(float)
        for pid, (host, comm, seconds) in after.items():
            start = self.before.get(pid)
            used = seconds - (start[2] if start and start[:2] == (host, comm) else 0.0)
            hosts[host] += max(0.0, used)
            programs[f"{host}/{_program(comm)}"] += max(0.0, used)
        self.by_host, self.by_program = dict(hosts), dict(programs)
        cpus = os.cpu_count() or 1
        self.machine_cores_busy = (busy1 - self.busy0) / max(1e-9, total1 - self.total0) * cpus
        return self

    def cores(self, host: str) -> float:
        """Average cores `host` used over the span."""
        return self.by_host.get(host, 0.0) / max(1e-9, self.wall)


def _program(comm: str) -> str:
    if comm.startswith("redis"):
        return "redis"
    if comm.startswith(("celery", "python")):
        return "python"
    return comm
