"""Live events and webhooks under load: event latency to an SSE client, the API's latency while
hundreds of event streams stay open, and webhook deliveries per second.

    .venv/bin/python bench/run.py --only events [--jobs 40] [--streams 200] [--pings 200]

A real stack (gunicorn with gevent workers, a scrapy worker, a webhooks worker; Redis and
SecantusDB started for the run) and the demo site. Latency is measured from the worker's
timestamp of `job.completed` to the moment an SSE client on GET /events reads it (same clock).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import requests  # noqa: E402
from common import one_page_job  # noqa: E402

from deploy import embedded  # noqa: E402
from testing.helpers import Stack  # noqa: E402
from testing.sites.server import SiteServer  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def event_latency(stack: Stack, headers: dict, site: str, jobs: int) -> dict:
    """ms from the worker's job.completed stamp to an SSE client reading it."""
    latencies: list[float] = []
    done, listening = threading.Event(), threading.Event()

    def listen() -> None:
        with requests.get(stack.url("/events"), headers=headers, stream=True, timeout=120) as r:
            listening.set()  # the API answered: events from now on reach this client
            for line in r.iter_lines(decode_unicode=True):
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
        "p50_ms": round(pct(latencies, 0.5), 1),
        "p95_ms": round(pct(latencies, 0.95), 1),
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
        "p50_ms": round(pct(timings, 0.5), 1),
        "p99_ms": round(pct(timings, 0.99), 1),
    }


def webhook_rate(stack: Stack, headers: dict, pings: int) -> dict:
    """Deliveries per second to a local receiver (pings through the webhooks queue)."""
    got: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--pings", type=int, default=200)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-events-"))
    redis_service = embedded.start_redis(workdir / "redis")
    store = embedded.start_secantus(workdir / "mongo")
    stack = Stack(redis_service.url, store.url, f"bench_{uuid.uuid4().hex[:6]}", workdir)
    try:
        with SiteServer(pages=5) as site:
            stack.start(api=True, queues=("scrapy",))
            stack.start_worker("webhooks", concurrency=4)
            headers = stack.register()
            figures = {
                "event_latency": event_latency(stack, headers, site.url, args.jobs),
                "open_streams": open_streams(stack, headers, args.streams, args.calls),
                "webhooks": webhook_rate(stack, headers, args.pings),
            }
    finally:
        stack.stop()
        store.stop()
        redis_service.stop()
    print(json.dumps(figures, indent=2))
    lat, hold, hooks = figures["event_latency"], figures["open_streams"], figures["webhooks"]
    print(
        f"event latency (worker -> SSE client), n={lat['n']}: p50 {lat['p50_ms']} ms, "
        f"p95 {lat['p95_ms']} ms"
    )
    print(
        f"GET /jobs with {hold['streams']} SSE streams open: p50 {hold['p50_ms']} ms, "
        f"p99 {hold['p99_ms']} ms (target < 100 ms)"
    )
    print(f"webhook deliveries: {hooks['deliveries']} at {hooks['per_second']}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
