"""Change detection between two scheduled runs: time and memory as runs grow.

    .venv/bin/python bench/run.py --only changes [--sizes 10000,100000]

Two runs of N items each (1% changed, 0.5% added, 0.5% removed) in a SecantusDB started for
the run. shared/changes.py reads both runs' items once, sorts their fingerprints in a
temporary SQLite file and merge-joins them; the baseline loads both runs into dicts and
compares them (what a script would do). Each side runs in a fresh process; memory is that
process's peak resident set (VmHWM) minus its resident set before the comparison.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pymongo  # noqa: E402

from deploy import embedded  # noqa: E402
from shared import changes, items  # noqa: E402
from shared.db import ensure_indexes  # noqa: E402


def fill(db: Any, job_id: str, n: int, variant: int) -> None:
    """n items; variant 1 drops 0.5%, adds 0.5% and changes 1% of variant 0's."""
    batch = []
    for i in range(n):
        if variant and i % 200 == 0:
            continue  # removed
        price = f"{i * 1.5:.2f}" if not (variant and i % 100 == 1) else "0.00"
        batch.append({"sku": f"S{i}", "p": price})
    if variant:
        batch += [{"sku": f"S{i}", "p": "1"} for i in range(n, n + n // 200)]
    items.write(db, job_id, batch)


def naive(db: Any, before: str, after: str) -> dict[str, int]:
    old = {r["data"]["sku"]: r["data"] for r in items.iterate(db, before)}
    new = {r["data"]["sku"]: r["data"] for r in items.iterate(db, after)}
    return {
        "added": len(new.keys() - old.keys()),
        "removed": len(old.keys() - new.keys()),
        "changed": sum(1 for k in new.keys() & old.keys() if new[k] != old[k]),
    }


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(mode: str, url: str, name: str) -> None:
    """One comparison in this (fresh) process; prints its figures as JSON."""
    with pymongo.MongoClient(url) as client:
        db = client[name]
        db.command("ping")
        before = _rss_mib("VmRSS")
        started = time.perf_counter()
        if mode == "merge":
            run = {"_id": "run2", "schedule_id": "s", "owner_id": "o"}
            counts = changes.compare(db, run, "job1", "job2", "sku")
        else:
            counts = naive(db, "job1", "job2")
        seconds = time.perf_counter() - started
        peak = _rss_mib("VmHWM") - before
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "counts": counts}))


def measure(mode: str, url: str, name: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, url, name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def one_size(client: pymongo.MongoClient, url: str, n: int) -> dict[str, Any]:
    db = client[f"bench_changes_{n}"]
    client.drop_database(db.name)
    ensure_indexes(db)
    fill(db, "job1", n, 0)
    fill(db, "job2", n, 1)
    merged = measure("merge", url, db.name)
    plain = measure("naive", url, db.name)
    assert {k: merged["counts"][k] for k in plain["counts"]} == plain["counts"], (merged, plain)
    client.drop_database(db.name)
    return {
        "items": n,
        "counts": merged["counts"],
        "seconds": round(merged["seconds"], 2),
        "peak_mib": round(merged["peak_mib"], 1),
        "naive_seconds": round(plain["seconds"], 2),
        "naive_peak_mib": round(plain["peak_mib"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "URL", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        service = embedded.start_secantus(Path(tmp) / "mongo")
        try:
            with pymongo.MongoClient(service.url) as client:
                rows = [one_size(client, service.url, int(n)) for n in args.sizes.split(",")]
        finally:
            service.stop()
    print("\nchange detection, second run vs first (sorted fingerprints + merge join):")
    for row in rows:
        print(
            f"  {row['items']:>7} items: {row['seconds']:6.2f} s, peak {row['peak_mib']:6.1f} MiB"
            f"  | load-both-into-dicts: {row['naive_seconds']:6.2f} s, peak "
            f"{row['naive_peak_mib']:6.1f} MiB  | {row['counts']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
