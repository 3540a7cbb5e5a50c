"""The cost of `auto`'s measuring: an auto job against the engine it ends on, on a static site
and on a JavaScript site (first job, which probes, and later jobs, which use what was learned).

    .venv/bin/python bench/run.py --only auto [--rounds 5] [--static-pages 200] [--js-pages 10]

A real stack (gunicorn, a scrapy worker and a playwright worker; Redis and SecantusDB started
for the run) and the demo site in this process's threads. Each round runs every variant once,
timed from POST /jobs to `completed`; the medians are compared. Targets: static auto within
1.1x of scrapy, first JS auto within 1.3x of playwright, learned within 1.05x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from common import service_job  # noqa: E402

from deploy import embedded  # noqa: E402
from shared.auto_memory import COLLECTION  # noqa: E402
from testing.helpers import Stack  # noqa: E402
from testing.sites.server import SiteServer  # noqa: E402

TARGETS = {"static": 1.10, "js_first": 1.30, "js_learned": 1.05}


def timed(stack: Stack, headers: dict, spec: dict) -> float:
    """Seconds from POST to completed (polled every 20 ms)."""
    t0 = time.perf_counter()
    job = stack.submit(headers, **spec)
    while True:
        current = stack.job(job["id"], headers)
        if current["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    if current["status"] != "completed":
        raise RuntimeError(f"{spec['engine']} job {current['status']}: {current.get('error')}")
    return elapsed


def js_job(site: str, pages: int, engine: str) -> dict:
    return {
        "urls": [f"{site}/js/catalog/page/{p}" for p in range(1, pages + 1)],
        "engine": engine,
        "selectors": {"sku": "./@data-sku", "title": "h2.product-title::text"},
        "config": {"item_selector": "div.product", "max_pages": pages},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--static-pages", type=int, default=200)
    parser.add_argument("--js-pages", type=int, default=10)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-auto-"))
    redis_service = embedded.start_redis(workdir / "redis")
    store = embedded.start_secantus(workdir / "mongo")
    stack = Stack(redis_service.url, store.url, f"bench_{uuid.uuid4().hex[:6]}", workdir)
    times: dict[str, list[float]] = {}
    try:
        with SiteServer(pages=max(args.static_pages, args.js_pages)) as site:
            stack.start(api=True, queues=("scrapy", "playwright"))
            headers = stack.register()
            memory = stack.database()[COLLECTION]
            static = service_job(site.url, args.static_pages, 8)
            for engine in ("scrapy", "auto", "playwright"):  # warm-up: imports, reactor, Chromium
                timed(stack, headers, {**js_job(site.url, 1, engine), "engine": engine})
            js_auto = js_job(site.url, args.js_pages, "auto")
            runs = [
                ("scrapy", {**static, "engine": "scrapy"}),
                ("static_auto", {**static, "engine": "auto"}),
                ("playwright", js_job(site.url, args.js_pages, "playwright")),
                ("js_first", js_auto),  # the memory is cleared first: this one probes
                ("js_learned", js_auto),
            ]
            for round_ in range(args.rounds):
                shift = round_ % 3  # the pairs change order from round to round
                order = runs[shift:3] + runs[:shift] + runs[3:]
                if round_ % 2:
                    order = [order[1], order[0], *order[2:]]
                for name, spec in order:
                    if name == "js_first":
                        memory.delete_many({})
                    times.setdefault(name, []).append(timed(stack, headers, spec))
    finally:
        stack.stop()
        store.stop()
        redis_service.stop()
    med = {name: statistics.median(values) for name, values in times.items()}
    best = {name: min(values) for name, values in times.items()}
    pairs = {
        "static": ("static_auto", "scrapy"),
        "js_first": ("js_first", "playwright"),
        "js_learned": ("js_learned", "playwright"),
    }
    ratios = {key: med[a] / med[b] for key, (a, b) in pairs.items()}
    best_ratios = {key: best[a] / best[b] for key, (a, b) in pairs.items()}
    figures = {
        "medians_s": {k: round(v, 3) for k, v in med.items()},
        "runs_s": {k: [round(v, 3) for v in vs] for k, vs in times.items()},
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "best_vs_best": {k: round(v, 3) for k, v in best_ratios.items()},
        "targets": TARGETS,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    labels = {
        "static": f"static site, {args.static_pages} pages: auto vs scrapy",
        "js_first": f"JS site, {args.js_pages} pages: first auto (probes) vs playwright",
        "js_learned": f"JS site, {args.js_pages} pages: learned auto vs playwright",
    }
    for key, label in labels.items():
        verdict = "ok" if ratios[key] <= TARGETS[key] else "OVER TARGET"
        print(
            f"{label}: {ratios[key]:.3f}x, best vs best {best_ratios[key]:.3f}x "
            f"(target ≤ {TARGETS[key]}x) {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
