"""Exactly one beat is active per deployment; a standby takes over when it dies."""

from __future__ import annotations

import signal
import sys
import uuid

import pytest

from testing.helpers import Stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_two_beats_one_active_and_the_standby_takes_over(redis_url, mongo_url, tmp_path):
    stack = Stack(redis_url, mongo_url, f"beat_{uuid.uuid4().hex[:8]}", tmp_path)
    stack.extra_env = {"RECONCILE_INTERVAL_SECONDS": "1", "BEAT_LOCK_TIMEOUT_SECONDS": "3"}
    argv = [sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO"]
    sent = "Sending due task reconcile-jobs"
    try:
        stack.spawn("beat-1", argv)
        wait_for(lambda: sent in stack.logs["beat-1"].read_text(), 30, message="beat-1 active")
        stack.spawn("beat-2", argv)
        # beat-1 keeps sending every second while beat-2 waits for the lock
        before = stack.logs["beat-1"].read_text().count(sent)
        wait_for(
            lambda: stack.logs["beat-1"].read_text().count(sent) >= before + 4,
            30,
            message="beat-1 still sending",
        )
        assert sent not in stack.logs["beat-2"].read_text()
        stack.stop_process("beat-1", signal.SIGKILL)  # dies without releasing its lock
        wait_for(lambda: sent in stack.logs["beat-2"].read_text(), 30, message="beat-2 takes over")
    finally:
        stack.stop()
