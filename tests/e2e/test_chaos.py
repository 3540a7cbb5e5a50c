"""The short chaos run: worker kills, a Redis and a store restart, races; nothing lost."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser]


def test_short_chaos_run_loses_and_doubles_nothing(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos.py"), "--short", "--workdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    table = run.stdout[-4000:] + run.stderr[-2000:]
    assert run.returncode == 0, table
    assert "| jobs lost | 0 |" in run.stdout and "| items duplicated | 0 |" in run.stdout
