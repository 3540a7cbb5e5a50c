"""The multi-host harness, short: the service on hosts made of network namespaces (data, api,
ops, two worker hosts, site, client), a worker host lost mid-run and Redis restarted mid-run;
every job completes exactly once. Needs root (it makes namespaces); skipped elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from testing.helpers import ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("unshare") is None,
        reason="the harness makes network namespaces: root with iproute2 and unshare only",
    ),
]


def namespaces() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]


@pytest.mark.timeout(660)  # it may first wait for another run's simulation (one per machine)
def test_jobs_spread_over_hosts_and_survive_a_host_loss_and_a_redis_restart(tmp_path):
    out = tmp_path / "sim.json"
    done = subprocess.run(
        [sys.executable, "-m", "deploy.sim", "--short", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    one, two = result["throughput"]
    assert one["jobs_by_host"] == {"worker-1": one["jobs"]}
    assert set(two["jobs_by_host"]) == {"worker-1", "worker-2"}  # the work spread out
    loss, redis = result["host_loss"], result["redis_restart"]
    assert loss["orphaned_jobs"] >= 1 and loss["victim"] == "worker-2"
    assert loss["orphans_finished_on"] == ["worker-1"]  # its jobs finished on the other host
    assert redis["messages_lost"] >= 1  # only the reconciler could bring those jobs back
    for run in (one, two, loss, redis):
        assert run["exactly_once"], run
        assert run["items_stored"] == run["items_expected"] and run["duplicates"] == 0
    assert not [n for n in namespaces() if n.startswith("smsim-")]  # torn down
    assert "torn down" in done.stdout
