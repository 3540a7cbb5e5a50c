"""The cost of `auto`'s measuring: an auto job against the engine it ends on.

On a static site and on a JavaScript site (first job, which probes, and later jobs, which use
what was learned).

A real stack (gunicorn, a scrapy worker and a playwright worker; Redis and SecantusDB started
for the run) and the demo site in this process's threads. Each round runs every variant once,
timed from POST /jobs to `completed`; the medians are compared. Targets: static auto within
1.1x of scrapy, first JS auto within 1.3x of playwright, learned within 1.05x.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from bench.common import Service, log, service_job, stack_of
from testing.sites.server import SiteServer


def timed(svc: Service, spec: dict) -> float:
    """Seconds from POST to completed (polled every 20 ms)."""
    job = svc.run_job(spec, poll=0.02, timeout=600)
    if job["status"] != "completed":
        raise RuntimeError(f"{spec['engine']} job {job['status']}: {job.get('error')}")
    return float(job["_bench"]["elapsed_s"])


def js_job(site: str, pages: int, engine: str) -> dict:
    return {
        "urls": [f"{site}/js/catalog/page/{p}" for p in range(1, pages + 1)],
        "engine": engine,
        "selectors": {"sku": "./@data-sku", "title": "h2.product-title::text"},
        "config": {"item_selector": "div.product", "max_pages": pages},
    }


TITLE = "The cost of `auto`'s measuring"
ABOUT = (
    "`auto` against the engine it ends on: a static catalog crawl (`auto` ends on `scrapy`) "
    "and JavaScript catalog pages (`auto` ends on `playwright`), the first job of a site "
    "(static probe, render, compare) and later ones (learned: straight to the browser queue). "
    "A scrapy and a playwright worker; each round runs every variant once in a rotating order, "
    "timed `POST` → `completed`; medians compared. Targets: static ≤ 1.1×, first JavaScript "
    "job ≤ 1.3×, learned ≤ 1.05×."
)
LABELS = {
    "rounds": "rounds",
    "static_pages": "static catalog pages (100 start URLs, concurrency 8)",
    "js_pages": "JavaScript catalog pages",
    "scrapy_static_s": "static crawl, `scrapy`, s (median)",
    "auto_static_s": "static crawl, `auto`, s (median)",
    "playwright_js_s": "JavaScript pages, `playwright`, s (median)",
    "auto_js_first_s": "JavaScript pages, first `auto` job (probes), s (median)",
    "auto_js_learned_s": "JavaScript pages, later `auto` job (learned), s (median)",
    "best_vs_best": "best run ÷ best run",
}
PAIRS = {
    "static": ("auto_static_s", "scrapy_static_s"),
    "js_first": ("auto_js_first_s", "playwright_js_s"),
    "js_learned": ("auto_js_learned_s", "playwright_js_s"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--static-pages", type=int, default=200)
    parser.add_argument("--js-pages", type=int, default=10)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from shared.auto_memory import COLLECTION

    times: dict[str, list[float]] = {}
    with (
        SiteServer(pages=max(args.static_pages, args.js_pages)) as site,
        stack_of(args.results_dir) as stack,
    ):
        stack.start(api=True, queues=("scrapy", "playwright"))
        svc = Service(stack, site_pid=0)
        svc.headers = stack.register()
        memory = stack.database()[COLLECTION]
        static = service_job(site.url, args.static_pages, 8)
        for engine in ("scrapy", "auto", "playwright"):  # warm-up: imports, reactor, Chromium
            timed(svc, js_job(site.url, 1, engine))
        js_auto = js_job(site.url, args.js_pages, "auto")
        runs = [
            ("scrapy_static_s", {**static, "engine": "scrapy"}),
            ("auto_static_s", {**static, "engine": "auto"}),
            ("playwright_js_s", js_job(site.url, args.js_pages, "playwright")),
            ("auto_js_first_s", js_auto),  # the memory is cleared first: this one probes
            ("auto_js_learned_s", js_auto),
        ]
        for round_ in range(args.rounds):
            log(f"round {round_ + 1}/{args.rounds}")
            shift = round_ % 3  # the pairs change order from round to round
            order = runs[shift:3] + runs[:shift] + runs[3:]
            if round_ % 2:
                order = [order[1], order[0], *order[2:]]
            for name, spec in order:
                if name == "auto_js_first_s":
                    memory.delete_many({})
                times.setdefault(name, []).append(timed(svc, spec))
    med = {name: round(statistics.median(values), 3) for name, values in times.items()}
    best = {name: min(values) for name, values in times.items()}
    figures: dict[str, Any] = {
        "rounds": args.rounds,
        "static_pages": args.static_pages,
        "js_pages": args.js_pages,
        **med,
        "best_vs_best": {k: round(best[a] / best[b], 2) for k, (a, b) in PAIRS.items()},
    }
    ratios = {f"{a} / {b}": round(med[a] / med[b], 3) for a, b in PAIRS.values()}
    for line in (f"{k}: {v:.3f}x" for k, v in ratios.items()):
        log(line)
    return {"figures": figures, "ratios": ratios, "details": {"runs_s": times}}
