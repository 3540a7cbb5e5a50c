"""The short chaos run: the whole `make run` under every kind of fault, audited through the API."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser]


def _row(table: str, label: str) -> str:
    match = re.search(rf"^\| {re.escape(label)} \| (.*) \|$", table, re.M)
    assert match, f"no row {label!r} in\n{table}"
    return match.group(1)


def test_short_chaos_run_loses_doubles_and_leaves_nothing(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos.py"), "--short", "--workdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    table = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, table
    assert _row(run.stdout, "jobs lost") == "0"
    assert _row(run.stdout, "items duplicated") == "0"
    assert _row(run.stdout, "service processes left") == "0"
    # every fault kind was injected, not skipped
    for label in ("Chromium SIGKILLs", "Redis outages at a job's last page"):
        assert int(_row(run.stdout, label)) >= 1, table
    supervisor = "supervisor SIGKILL: processes left / reaped in / new supervisor ready in"
    assert _row(run.stdout, supervisor).startswith("0 / "), table
    assert _row(run.stdout, "Flower answering at the end") == "True"
    poison = _row(run.stdout, "poison job: status, error.type, attempts, times killed")
    assert poison.startswith("failed, worker_lost") or "not available" in poison, table
    lost = _row(run.stdout, "terminal webhooks expected / received (unique event ids) / lost")
    assert lost.endswith("/ 0") or "not available" in lost, table
