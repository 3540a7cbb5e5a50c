"""Users' Scrapy spiders: the test project's `catalog` spider (testing/spider_project, built
into an egg) run three ways against the demo site (its own process), one-page and N-page
crawls, timed from submit to finished:

- bare: `python -m scrapy crawl catalog` in a fresh interpreter, from the unpacked egg, items
  to a JSON-lines feed (the time from starting the process to its exit);
- service: the egg deployed through the Scrapyd-compatible API, a job with `engine: "spider"`
  POSTed to /api/v1/jobs, run by a real worker-spiders (the time from POST until GET shows
  the job completed);
- scrapyd: Scrapyd 1.6 as a subprocess with a config of its own (poll_interval 0.1, items to
  items_dir), the same egg through addversion.json, schedule.json, then listjobs.json until
  the job is finished (the time from schedule.json until listjobs.json shows it finished).

Every side runs the spider in a fresh Python process and stores every item; every run must
find pages × 10 items. LOG_LEVEL is INFO on every side (the service's default for a project
that sets none). Each side runs one untimed one-page warm-up first.

    run(args) -> {"figures": {...}, "ratios": {"service_1_s / bare_1_s": ..., ...}}

`.venv/bin/python -m bench spiders --save` keeps them for docs/benchmarks.md and the README.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bench import common
from deploy import embedded
from testing.helpers import wait_for
from testing.spider_eggs import demo_egg

TITLE = "Scrapy spiders: bare `scrapy crawl`, a ScrapeMaster job, Scrapyd 1.6"
ABOUT = (
    "The test project's `catalog` spider (it follows the demo catalog's next links, 10 items a "
    "page) crawls 1 page and 1,000 pages (`--pages`) of the demo site: by bare `scrapy crawl` "
    "from the unpacked egg (process start to exit), as a ScrapeMaster job with "
    '`engine: "spider"` (POST /jobs to `completed`, real API and worker-spiders) and on '
    "Scrapyd 1.6 (`schedule.json` until `listjobs.json` shows it finished; `poll_interval` "
    "0.1). Each spider runs in a fresh Python process and every item is stored (a feed file, "
    "MongoDB, Scrapyd's items_dir). Bare `scrapy crawl` (and Scrapyd's runner, the same "
    "command line) pays for Scrapy's command-line start-up and the interpreter's orderly "
    "exit; a job's process runs the crawl with `CrawlerRunner` and ends with `os._exit` once "
    "the spider closed, hence a one-page ratio that can be under 1. Wall time, the median of "
    "the runs; lower is better."
)
LABELS = {
    "pages": "pages of the long crawl",
    "repeat": "runs of each side and size",
    "bare_1_s": "bare `scrapy crawl`, 1 page (s)",
    "service_1_s": "ScrapeMaster job, 1 page (s)",
    "scrapyd_1_s": "Scrapyd 1.6, 1 page (s)",
    "bare_n_s": "bare `scrapy crawl`, long crawl (s)",
    "service_n_s": "ScrapeMaster job, long crawl (s)",
    "scrapyd_n_s": "Scrapyd 1.6, long crawl (s)",
}
PROJECT = "demo"
VERSION = "1.0"
PER_PAGE = 10  # bench.common.start_site's items per page
POLL = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `bench spiders`."""
    parser.add_argument("--pages", type=int, default=1000, help="the long crawl (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; median")


def _args(site: str, pages: int) -> dict[str, str]:
    return {"start": f"{site}/catalog/", "limit": str(pages), "tag": "bench"}


# --------------------------------------------------------------------------- bare scrapy crawl


def _bare(project: Path, site: str, pages: int, out: Path) -> tuple[float, int]:
    """`scrapy crawl catalog` in a fresh interpreter: (seconds, items)."""
    feed = out / f"bare-{uuid.uuid4().hex[:8]}.jsonl"  # .jsonl: Scrapy's JSON-lines exporter
    argv = [sys.executable, "-m", "scrapy", "crawl", "catalog", "-s", "LOG_LEVEL=INFO"]
    for name, value in _args(site, pages).items():
        argv += ["-a", f"{name}={value}"]
    argv += ["-o", str(feed)]
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(out),
        "PYTHONPATH": str(project),
        "SCRAPY_SETTINGS_MODULE": "demo_spiders.settings",
    }
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"scrapy crawl failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, len(feed.read_text().splitlines())


# --------------------------------------------------------------------------- ScrapeMaster


class _Service:
    """The API and one worker-spiders on a Stack of their own; one user with the egg."""

    def __init__(self, stack: common.BenchStack, site_pid: int) -> None:
        self.svc = common.Service(stack, site_pid)
        self.stack = stack

    def start(self, egg: bytes) -> _Service:
        name, password = "bench-admin", f"bench-{uuid.uuid4().hex}"  # deploying needs the role
        self.stack.start(api=True, queues=(), ADMIN_USERNAME=name, ADMIN_PASSWORD=password)
        self.stack.start_worker(
            "spiders", concurrency=1, PROGRESS_INTERVAL_SECONDS=common.PRODUCTION_PROGRESS_INTERVAL
        )
        token = requests.post(
            self.stack.url("/auth/login"), data={"username": name, "password": password}, timeout=30
        ).json()
        self.svc.headers = {"Authorization": f"Bearer {token['access_token']}"}
        added = requests.post(
            f"{self.stack.base}/scrapyd/addversion.json",
            data={"project": PROJECT, "version": VERSION},
            files={"egg": ("demo.egg", egg)},
            auth=(name, password),
            timeout=120,
        ).json()
        if added.get("status") != "ok":
            raise RuntimeError(f"addversion.json: {added}")
        return self

    def crawl(self, site: str, pages: int) -> tuple[float, int]:
        spec = {
            "engine": "spider",
            "spider": {"project": PROJECT, "name": "catalog", "args": _args(site, pages)},
            "config": {"timeout_seconds": 600},
        }
        job = self.svc.run_job(spec, poll=POLL, timeout=600)
        if job["status"] != "completed":
            raise RuntimeError(f"service job {job['status']}: {job.get('error')}")
        return job["_bench"]["elapsed_s"], job["items_scraped"]


# --------------------------------------------------------------------------- Scrapyd


class _Scrapyd:
    """Scrapyd 1.6 as a subprocess, its config and directories in `home`."""

    def __init__(self, home: Path, cleanup: common.Cleanup) -> None:
        self.home = home
        self.cleanup = cleanup
        self.port = embedded.free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self, egg: bytes) -> _Scrapyd:
        dirs = {name: self.home / name for name in ("eggs", "logs", "dbs", "items")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        (self.home / "scrapyd.conf").write_text(
            "[scrapyd]\n"
            "bind_address = 127.0.0.1\n"
            f"http_port = {self.port}\n"
            + "".join(f"{name}_dir = {path}\n" for name, path in dirs.items())
            + "poll_interval = 0.1\n"
        )
        log = open(self.home / "scrapyd.log", "wb")  # noqa: SIM115 - closed by the cleanup
        proc = subprocess.Popen(
            [sys.executable, "-m", "scrapyd"],
            cwd=self.home,  # it reads ./scrapyd.conf
            env={"PATH": "/usr/bin:/bin", "HOME": str(self.home)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.cleanup.push("scrapyd log", log.close)
        self.cleanup.push("scrapyd", lambda: common.kill_group(proc))

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError((self.home / "scrapyd.log").read_text()[-3000:])
            try:
                return requests.get(f"{self.base}/daemonstatus.json", timeout=1).ok
            except requests.RequestException:
                return False

        wait_for(up, 60, message="scrapyd answering")
        added = requests.post(
            f"{self.base}/addversion.json",
            data={"project": PROJECT, "version": VERSION},
            files={"egg": ("demo.egg", egg)},
            timeout=120,
        ).json()
        if added.get("status") != "ok":
            raise RuntimeError(f"scrapyd addversion.json: {added}")
        return self

    def crawl(self, site: str, pages: int) -> tuple[float, int]:
        started = time.perf_counter()
        scheduled = requests.post(
            f"{self.base}/schedule.json",
            data={"project": PROJECT, "spider": "catalog", "setting": "LOG_LEVEL=INFO"}
            | _args(site, pages),
            timeout=30,
        ).json()
        job = scheduled.get("jobid")
        if not job:
            raise RuntimeError(f"scrapyd schedule.json: {scheduled}")

        def finished() -> bool:
            jobs = requests.get(
                f"{self.base}/listjobs.json", params={"project": PROJECT}, timeout=30
            ).json()
            return any(j["id"] == job for j in jobs["finished"])

        wait_for(finished, 600, interval=POLL, message=f"scrapyd job {job} finished")
        seconds = time.perf_counter() - started
        items = self.home / "items" / PROJECT / "catalog" / f"{job}.jl"
        return seconds, len(items.read_text().splitlines()) if items.exists() else 0


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Each side `args.repeat` times at 1 page and at `args.pages`; medians and ratios."""
    pages, repeat = int(args.pages), int(args.repeat)
    egg = demo_egg(VERSION)
    runs: dict[str, list[float]] = {}
    with common.Cleanup() as cleanup, tempfile.TemporaryDirectory(prefix="bench-sp-") as tmp:
        work = Path(tmp)
        project = work / "project"
        with zipfile.ZipFile(_write(work / "demo.egg", egg)) as unpacked:
            unpacked.extractall(project)
        site, site_proc = common.start_site(pages, cleanup)
        common.log(f"demo site at {site} ({pages} pages)")
        scrapyd = _Scrapyd(work / "scrapyd", cleanup).start(egg)
        common.log(f"scrapyd 1.6 at {scrapyd.base}")
        with common.stack_of(work / "stack", prefix="bench_spiders") as stack:
            service = _Service(stack, site_proc.pid).start(egg)
            common.log("API and worker-spiders up; egg deployed to both")
            sides: dict[str, Callable[[int], tuple[float, int]]] = {
                "bare": lambda n: _bare(project, site, n, work),
                "service": lambda n: service.crawl(site, n),
                "scrapyd": lambda n: scrapyd.crawl(site, n),
            }
            for warm_up in sides.values():  # untimed: disk caches, the eggs unpacked once
                warm_up(1)
            for size, n in (("1", 1), ("n", pages)):
                for _ in range(repeat):
                    for side, crawl in sides.items():  # interleaved: load hits every side
                        seconds, items = crawl(n)
                        if items != n * PER_PAGE:
                            raise RuntimeError(f"{side}: {items} items, not {n * PER_PAGE}")
                        runs.setdefault(f"{side}_{size}_s", []).append(seconds)
                        common.log(f"{side}, {n} page(s): {seconds:.2f} s")
    figures: dict[str, Any] = {"pages": pages, "repeat": repeat}
    figures |= {key: round(statistics.median(values), 3) for key, values in runs.items()}
    ratios = {
        f"{side}_{size}_s / bare_{size}_s": common.ratio(
            figures[f"{side}_{size}_s"], figures[f"bare_{size}_s"]
        )
        for size in ("1", "n")
        for side in ("service", "scrapyd")
    }
    return {
        "figures": figures,
        "ratios": ratios,
        "notes": [
            f"every run found its pages × {PER_PAGE} items; the runs of each size interleave "
            "the three sides",
            "all times: " + json.dumps({k: [round(v, 2) for v in vs] for k, vs in runs.items()}),
        ],
        "details": runs,
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    print(json.dumps(run(parser.parse_args()), indent=2))
