"""The chaos suite counts and kills its own stack's processes only, orphans included."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from bench.chaos import ProcessTracker
from testing.helpers import wait_for


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _children(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    with open(path) as handle:
        return [int(p) for p in handle.read().split()]


def test_tracker_finds_the_stacks_processes_and_their_orphans_and_nothing_else(tmp_path, procs):
    var = tmp_path / "var"
    mine = {**os.environ, "VAR_DIR": str(var)}
    # a marked parent with two children that drop their environment (as Chromium's helpers
    # write their title over it), one of them in a session of its own
    parent = subprocess.Popen(
        ["bash", "-c", "env -i sleep 300 & env -i setsid sleep 301 & wait"],
        env=mine,
        start_new_session=True,
    )
    procs.append(parent)
    # another stack's process, and one of no stack: never counted, never killed
    foreign = subprocess.Popen(["sleep", "302"], env={**os.environ, "VAR_DIR": f"{var}-other"})
    procs.append(foreign)
    children = wait_for(lambda: len(_children(parent.pid)) == 2 and _children(parent.pid))
    tracker = ProcessTracker(var)

    assert wait_for(lambda: set(tracker.alive()) == {parent.pid, *children})
    assert tracker.alive(b"sleep\x00301") == [c for c in children if b"301" in _cmd(c)]
    assert not tracker.owns(foreign.pid) and not tracker.owns(os.getpid())
    assert tracker.kill(foreign.pid) is False
    assert foreign.poll() is None

    os.kill(parent.pid, signal.SIGKILL)  # its children are orphaned, reparented elsewhere
    parent.wait(10)
    assert set(tracker.alive()) == set(children)

    for child in children:
        assert tracker.kill(child)
    assert wait_for(lambda: tracker.alive() == [])
    assert foreign.poll() is None


def _cmd(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read()
