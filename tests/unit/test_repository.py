"""The repository itself: nothing half-merged is committed."""

from __future__ import annotations

import re
import subprocess

from testing.helpers import ROOT

MARKER = re.compile(rb"^(<{7} |>{7} |={7}$)", re.M)


def test_no_tracked_file_holds_a_merge_conflict_marker():
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    marked = []
    for name in filter(None, tracked):
        path = ROOT / name.decode()
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        if MARKER.search(path.read_bytes()):
            marked.append(name.decode())
    assert marked == []
