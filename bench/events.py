"""Live events and webhooks under load.

Event latency to an SSE client, the API's latency while hundreds of event streams stay open,
and webhook deliveries per second.

A real stack (gunicorn with gevent workers, a scrapy worker, a webhooks worker; Redis and
SecantusDB started for the run) and the demo site. Latency is measured from the worker's
timestamp of `job.completed` to the moment an SSE client on GET /events reads it (same clock).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from bench.common import one_page_job, percentile, stack_of
from testing.helpers import Stack
from testing.sites.server import SiteServer


def event_latency(stack: Stack, headers: dict, site: str, jobs: int) -> dict:
    """ms from the worker's job.completed stamp to an SSE client reading it."""
    latencies: list[float] = []
    done, listening = threading.Event(), threading.Event()

    def listen() -> None:
        with requests.get(stack.url("/events"), headers=headers, stream=True, timeout=120) as r:
            listening.set()  # the API answered: events from now on reach this client
            for raw in r.iter_lines(decode_unicode=True):
                line = raw if isinstance(raw, str) else raw.decode()
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event["type"] == "job.completed":
                        stamp = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
                        latencies.append((time.time() - stamp.timestamp()) * 1000)
                        if len(latencies) >= jobs:
                            done.set()
                            return

    threading.Thread(target=listen, daemon=True).start()
    listening.wait(30)
    for page in range(jobs):
        stack.submit(headers, **one_page_job(site, page % 5 + 1))
    done.wait(120)
    return {
        "n": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
    }


def open_streams(stack: Stack, headers: dict, streams: int, calls: int) -> dict:
    """GET /jobs latency while `streams` SSE clients stay connected."""
    stop = threading.Event()
    opened = threading.Semaphore(0)

    def hold() -> None:
        with requests.get(stack.url("/events"), headers=headers, stream=True, timeout=300) as r:
            opened.release()
            for _ in r.iter_lines():
                if stop.is_set():
                    return

    for _ in range(streams):
        threading.Thread(target=hold, daemon=True).start()
    for _ in range(streams):
        opened.acquire(timeout=60)
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        answer = requests.get(stack.url("/jobs?limit=20"), headers=headers, timeout=30)
        timings.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text
    stop.set()
    return {
        "streams": streams,
        "calls": calls,
        "p50_ms": round(percentile(timings, 50), 1),
        "p99_ms": round(percentile(timings, 99), 1),
    }


def webhook_rate(stack: Stack, headers: dict, pings: int) -> dict:
    """Deliveries per second to a local receiver (pings through the webhooks queue)."""
    got: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.append(time.perf_counter())
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    hook = requests.post(
        stack.url("/webhooks"), json={"webhook_url": url}, headers=headers, timeout=10
    ).json()
    started = time.perf_counter()
    for _ in range(pings):
        requests.post(stack.url(f"/webhooks/{hook['id']}/ping"), headers=headers, timeout=10)
    deadline = time.monotonic() + 120
    while len(got) < pings and time.monotonic() < deadline:
        time.sleep(0.05)
    server.shutdown()
    elapsed = (got[-1] if got else time.perf_counter()) - started
    return {"deliveries": len(got), "per_second": round(len(got) / elapsed, 1)}


TITLE = "Live events"
ABOUT = (
    "A job's `job.completed` from the worker's timestamp to an SSE client on `GET /events` "
    "reading it (same clock); `GET /jobs` while hundreds of SSE streams stay open; webhook "
    "pings delivered to a local receiver by 4 delivery processes. The API on gunicorn's gevent "
    "workers, a scrapy worker."
)
LABELS = {
    "jobs": "jobs whose `job.completed` is timed",
    "sse_latency_p50_ms": "`job.completed` to the SSE client, p50, ms",
    "sse_latency_p95_ms": "`job.completed` to the SSE client, p95, ms",
    "streams": "SSE streams open",
    "jobs_list_p50_ms": "`GET /jobs` with the streams open, p50, ms",
    "jobs_list_p99_ms": "`GET /jobs` with the streams open, p99, ms",
    "webhook_deliveries_per_s": "webhook deliveries to a local receiver, per second",
    "webhook_processes": "delivery processes",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=40, help="jobs whose event is timed")
    parser.add_argument("--streams", type=int, default=200, help="SSE streams held open")
    parser.add_argument("--calls", type=int, default=200, help="GET /jobs calls meanwhile")
    parser.add_argument("--pings", type=int, default=200, help="webhook pings delivered")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with SiteServer(pages=5) as site, stack_of(args.results_dir) as stack:
        stack.start(api=True, queues=("scrapy",))
        stack.start_worker("webhooks", concurrency=4)
        headers = stack.register()
        latency = event_latency(stack, headers, site.url, args.jobs)
        held = open_streams(stack, headers, args.streams, args.calls)
        hooks = webhook_rate(stack, headers, args.pings)
    figures = {
        "jobs": latency["n"],
        "sse_latency_p50_ms": latency["p50_ms"],
        "sse_latency_p95_ms": latency["p95_ms"],
        "streams": held["streams"],
        "jobs_list_p50_ms": held["p50_ms"],
        "jobs_list_p99_ms": held["p99_ms"],
        "webhook_deliveries_per_s": hooks["per_second"],
        "webhook_processes": 4,
    }
    ok = latency["n"] == args.jobs and hooks["deliveries"] == args.pings
    return {"figures": figures, "ratios": {}, "ok": ok}
