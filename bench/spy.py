"""py-spy sampling of running processes, and a plain-text summary of the collapsed stacks."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections import Counter
from pathlib import Path


def start(py_spy: str, pid: int, out: Path, rate: int = 100) -> subprocess.Popen:
    """Sample `pid` (all threads, idle frames excluded) until stop(); raw collapsed stacks."""
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--threads",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(out.with_suffix(".err"), "wb"),  # noqa: SIM115
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _frame_name(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    parts = where.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else where
    return f"{name} ({short})"


def summarize(raw: Path, top: int = 25) -> dict:
    """Samples per thread, inclusive and self samples per function, as fractions of all."""
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    if not raw.exists():
        return {"samples": 0}
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        if frames and frames[0].startswith(("thread ", "process ")):
            threads[frames[0]] += count
            frames = frames[1:]
        if not frames:
            continue
        for name in {_frame_name(f) for f in frames}:
            inclusive[name] += count
        self_time[_frame_name(frames[-1])] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(v / total, 3)) for k, v in counter.most_common(top)]

    return {
        "samples": total,
        "threads": share(threads),
        "inclusive": share(inclusive),
        "self": share(self_time),
    }
