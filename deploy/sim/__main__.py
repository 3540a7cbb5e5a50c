"""`python -m deploy.sim`: ScrapeMaster over several hosts made of network namespaces.

Builds the hosts of deploy/sim/stack.py on a private segment, starts the service on them with
the project's own commands, and shows, as tables: the jobs spread over the worker hosts and the
throughput with 1, 2, … worker hosts on the same workload (with each host's CPU), a worker host
lost mid-run, and the data host's Redis restarted mid-run, each audited for every job
completing exactly once. Root only (it makes namespaces). It tears everything down itself, on
success, failure or a signal; traffic never leaves the namespaces it made.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from deploy.sim import report, scenarios
from deploy.sim.cpu import Sampler
from deploy.sim.hosts import Hosts
from deploy.sim.net import SUBNET, NetError, Network
from deploy.sim.stack import ROOT, Stack, tail, wait_http, worker_host
from deploy.sim.workload import Client

SHORT_KNOBS = {  # the short run (tests): a lost worker's jobs come back within seconds
    "JOB_STALE_SECONDS": "4",
    "RECONCILE_INTERVAL_SECONDS": "1",
    "RECONCILE_AFTER_SECONDS": "5",
    "BEAT_LOCK_TIMEOUT_SECONDS": "6",
}


def say(message: str) -> None:
    print(f"sim | {message}", flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.sim", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--workers", type=int, default=4, help="worker hosts, added one at a time")
    parser.add_argument("--jobs", type=int, default=24, help="jobs per throughput round")
    parser.add_argument("--pages", type=int, default=10, help="catalog pages per job")
    parser.add_argument("--items-per-page", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.05, help="the site's seconds per page")
    parser.add_argument("--short", action="store_true", help="2 hosts, a small workload (tests)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--keep", action="store_true", help="keep the logs' directory")
    args = parser.parse_args(argv)
    if args.short:
        args.workers, args.jobs, args.pages, args.items_per_page = 2, 8, 4, 10
        args.delay = 0.25
    if args.workers < 2:
        parser.error("--workers must be at least 2 (one of them is lost mid-run)")
    return args


def bring_up(stack: Stack, hosts: Hosts, args: argparse.Namespace) -> None:
    stack.start_data()
    stack.start_site()
    stack.start_api()
    stack.start_ops()
    wait_http(f"{stack.api_base}/health/ready", 120, hosts.find("api", "api"))
    stack.wait_worker(hosts.find("ops", "worker-maintenance"))
    say("data, site, api and ops hosts up")


def add_worker(stack: Stack, sampler: Sampler, k: int) -> None:
    stack.wait_worker(stack.start_worker(k))
    code, said = stack.worker_ready_check(k)  # the compose healthcheck, on that host
    if code != 0:
        raise RuntimeError(f"{worker_host(k)}: readiness check failed: {said}")
    sampler.settle(worker_host(k))  # its start-up is not the workload's CPU
    say(f"{worker_host(k)} up; its readiness check says: {said}")


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    knobs = dict(SHORT_KNOBS) if args.short else {}
    site = {"pages": args.pages, "items_per_page": args.items_per_page, "delay": args.delay}
    net = Network()
    hosts = Hosts(net, workdir, ROOT)
    stack = Stack(net, hosts, workdir, knobs, site)
    sampler: Sampler | None = None
    client: Client | None = None
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "knobs": knobs}
    try:
        net.create()
        stack.add_hosts(args.workers)
        net.check_isolated()
        say(f"{len(net.hosts)} hosts on {SUBNET}.0/24, with no route beyond it")
        net.enter("client")  # from here on, this process talks from the client host
        sampler = Sampler({h: net.namespace(h) for h in net.hosts})
        sampler.start()
        hosts.supervise()
        bring_up(stack, hosts, args)
        client = Client(
            stack.api_base, stack.mongo_url, stack.site_url, args.pages, args.items_per_page
        )
        ctx = scenarios.Context(stack, hosts, client, sampler, timeout=180)
        phases = []
        for k in range(1, args.workers + 1):
            add_worker(stack, sampler, k)
            phases.append(scenarios.throughput(ctx, k, args.jobs))
            rate, spread = phases[-1]["jobs_per_second"], phases[-1]["jobs_by_host"]
            say(f"{k} worker host(s): {rate} jobs/s, jobs per host {spread}")
        results["throughput"] = phases
        victim = worker_host(args.workers)
        results["host_loss"] = scenarios.host_loss(ctx, victim, args.jobs)
        say(f"{victim} lost: exactly once = {results['host_loss']['exactly_once']}")
        results["redis_restart"] = scenarios.redis_restart(ctx, args.jobs)
        say(f"Redis restarted: exactly once = {results['redis_restart']['exactly_once']}")
        results["restarts"] = hosts.restarts()
        return results
    except Exception:
        for proc in hosts.procs:
            if proc.popen is not None and proc.popen.poll() is not None and proc.exits:
                say(f"{proc.host}/{proc.name} exited {proc.exits}: {tail(proc.log, 5)}")
        raise
    finally:
        if client is not None:
            client.close()
        if sampler is not None:
            sampler.stop()
        hosts.stop_all()
        net.destroy()
        say("torn down: every process stopped, every namespace deleted")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()

    def interrupted(signum: int, _frame: object) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the teardown
        raise SystemExit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="scrapemaster-sim-"))
    try:
        results = run(args, workdir)
    except NetError as exc:
        say(f"cannot build the hosts: {exc}")
        return 2
    except BaseException:
        say(f"failed or interrupted; logs kept in {workdir}")
        raise
    results["seconds"] = round(time.monotonic() - started, 1)
    workload = f"{args.jobs} jobs × {args.pages} pages × {args.items_per_page} items"
    workload += f", site {args.delay} s/page"
    print(f"\nThroughput ({workload}; CPU in cores, averaged over the round):\n")
    print(report.scale_table(results["throughput"]))
    print("\nFaults (same workload):\n")
    print(report.fault_table(results["host_loss"], results["redis_restart"]))
    print(f"\nprocess restarts (as compose's restart policy): {results['restarts'] or 'none'}")
    print(f"harness run time: {results['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if args.keep:
        print(f"logs: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    ok = all(p["exactly_once"] for p in results["throughput"])
    ok = ok and results["host_loss"]["exactly_once"] and results["redis_restart"]["exactly_once"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
