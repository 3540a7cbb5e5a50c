"""Resident memory and CPU time of process trees, read from /proc (Linux only)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(ppid, cpu seconds, rss bytes) of `pid`, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    # fields[0] is state (field 3 of proc(5)): ppid=4, utime=14, stime=15, rss=24
    ppid, utime, stime, rss = int(fields[1]), int(fields[11]), int(fields[12]), int(fields[21])
    return ppid, (utime + stime) / TICK, rss * PAGE


def snapshot() -> dict[int, tuple[int, float, int]]:
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                found[int(name)] = stat
    return found


def tree(root: int, procs: dict[int, tuple[int, float, int]]) -> list[int]:
    """`root` and all its descendants present in `procs`."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            out.append(pid)
            todo.extend(children.get(pid, []))
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return "?"
    words = raw.rstrip(b"\0").split(b"\0")
    words[0] = os.path.basename(words[0])  # python, not /work/.../.venv/bin/python
    return b" ".join(words).decode(errors="replace")[:100]


def _self_cpu() -> float:
    times = os.times()
    return times.user + times.system


def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return total - idle, total


class Sampler:
    """Samples the process trees of named roots every `interval` s: peak RSS, CPU seconds."""

    def __init__(self, roots: Callable[[], dict[str, int]], interval: float = 0.2):
        self.roots = roots
        self.interval = interval
        self.peak_rss: dict[str, int] = {}
        self._cpu0: dict[str, float] = {}
        self._cpu: dict[str, float] = {}
        self._self0 = self._self1 = 0.0
        self._sys0 = (0.0, 0.0)
        self._sys1 = (0.0, 0.0)
        self._others_first: dict[int, float] = {}
        self._others_last: dict[int, float] = {}
        self._started = False
        self._names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _measure(self) -> dict[str, tuple[float, int]]:
        procs = snapshot()
        out = {}
        ours = {os.getpid()}
        for name, root in self.roots().items():
            pids = tree(root, procs)
            ours.update(pids)
            out[name] = (sum(procs[p][1] for p in pids), sum(procs[p][2] for p in pids))
        for pid, (_, cpu, _) in procs.items():  # CPU of everything else on the machine
            if pid not in ours:
                self._others_first.setdefault(pid, 0.0 if self._started else cpu)
                self._others_last[pid] = cpu
                if cpu - self._others_first[pid] > 0.1 and pid not in self._names:
                    self._names[pid] = _cmdline(pid)
        self._started = True
        return out

    def _sample(self) -> None:
        for name, (cpu, rss) in self._measure().items():
            self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)
            # max: a tree whose processes have exited reads 0; keep its last live figure
            self._cpu[name] = max(self._cpu.get(name, 0.0), cpu)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> Sampler:
        self._self0 = _self_cpu()
        self._sys0 = system_cpu()
        first = self._measure()
        self._cpu0 = {name: cpu for name, (cpu, _) in first.items()}
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self._sys1 = system_cpu()
        self._self1 = _self_cpu()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds each tree used between start() and stop()."""
        return {n: round(self._cpu.get(n, 0.0) - c0, 2) for n, c0 in self._cpu0.items()}

    def foreign_cpu(self, top: int = 3) -> dict:
        """CPU seconds the machine spent outside the measured trees and this process.

        `total` comes from /proc/stat (includes short-lived processes and the kernel);
        `top` names the biggest long-enough-lived other processes seen by the sampler.
        """
        busy = (self._sys1[0] - self._sys0[0]) / TICK
        ours = sum(self.cpu_seconds().values()) + (self._self1 - self._self0)
        deltas = {
            pid: last - self._others_first.get(pid, 0.0) for pid, last in self._others_last.items()
        }
        biggest = sorted(deltas.items(), key=lambda kv: -kv[1])[:top]
        named = [
            {"pid": pid, "cpu_s": round(cpu, 2), "cmd": self._names.get(pid) or _cmdline(pid)}
            for pid, cpu in biggest
            if cpu >= 0.2
        ]
        return {"total": round(max(0.0, busy - ours), 2), "top": named}

    def system_busy(self) -> float:
        """Fraction of all CPUs busy between start() and stop()."""
        busy = self._sys1[0] - self._sys0[0]
        total = self._sys1[1] - self._sys0[1]
        return round(busy / total, 3) if total else 0.0
