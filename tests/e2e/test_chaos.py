"""The short chaos run: the whole `make run` under every kind of fault, audited through the API."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from testing.helpers import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser]


def _row(table: str, label: str) -> str:
    match = re.search(rf"^\| {re.escape(label)} \| (.*) \|$", table, re.M)
    assert match, f"no row {label!r} in\n{table}"
    return match.group(1)


def test_short_chaos_run_loses_doubles_and_leaves_nothing(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "chaos",
            "--short",
            "--workdir",
            str(tmp_path / "var"),
            "--results",
            str(tmp_path / "results"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = run.stdout
    table = out[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, table
    assert "not available" not in out, table  # every check ran
    assert _row(out, "jobs lost") == "0"
    assert _row(out, "items duplicated") == "0"
    assert _row(out, "service processes left") == "0"
    # every kind of fault was injected, not skipped
    for label in ("Chromium SIGKILLs", "Redis outages at a job's last page"):
        assert int(_row(out, label)) >= 1, table
    supervisor = "supervisor SIGKILL: processes left / reaped in / new supervisor ready in"
    assert _row(out, supervisor).startswith("0 / "), table
    assert float(_row(out, "SIGSTOPped worker replaced in (s)")) > 0, table
    poison = _row(out, "poison job: status, error.type, attempts, times killed")
    assert poison.startswith("failed, worker_lost, "), table
    webhooks = _row(out, "terminal webhooks expected / received (unique event ids) / lost")
    expected, received, lost = (int(n) for n in webhooks.split(" / "))
    assert lost == 0 and received >= expected > 0, table
    assert _row(out, "Flower answering at the end") == "True"
