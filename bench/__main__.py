"""The one entry point of bench/: `.venv/bin/python -m bench SUBCOMMAND [options]`.

Each subcommand measures one thing (its module's docstring says how) and ends by printing its
figures as a JSON document (bench/figures.py). Logs and raw data of the run go to
bench/results/<timestamp>-<subcommand>/ (untracked); with --save the document is also written to
bench/figures/<subcommand>.json (committed), and `python -m bench report` regenerates
docs/benchmarks.md and the README's table from those files.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

# subcommand -> module (bench/<module>.py with add_arguments(parser) and run(args) -> dict)
SUBCOMMANDS: dict[str, str] = {
    "scrapy": "bench.crawl",
    "latency": "bench.latency",
    "playwright": "bench.browser",
    "soak": "bench.soak",
    "auto": "bench.auto_cost",
    "profile": "bench.profile_onepage",
    "events": "bench.events",
    "charset": "bench.charset_cost",
    "hang": "bench.hang",
    "chaos": "bench.chaos",
    "clicks": "bench.clicks",
    "politeness": "bench.politeness",
    "spiders": "bench.spiders",
}
ALL = ("scrapy", "latency", "playwright")  # `make bench`


def module(name: str) -> ModuleType:
    return importlib.import_module(SUBCOMMANDS[name])


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--save",
        action="store_true",
        help="write the figures to bench/figures/<subcommand>.json (then: python -m bench report)",
    )
    common.add_argument(
        "--results",
        metavar="DIR",
        type=Path,
        help="where the run's logs and raw data go (default: bench/results/<timestamp>-<name>/)",
    )
    top = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    subs = top.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    subs.required = True
    for name in SUBCOMMANDS:
        mod = module(name)
        doc = (mod.__doc__ or "").strip()
        sub = subs.add_parser(
            name,
            parents=[common],
            help=doc.splitlines()[0] if doc else None,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(sub)
    subs.add_parser(
        "all",
        parents=[common],
        help=f"{', '.join(ALL)} with their defaults, one after another (make bench)",
    )
    report = subs.add_parser("report", help="docs/benchmarks.md and the README's table from JSON")
    report.add_argument(
        "--check", action="store_true", help="only say whether the docs are up to date (exit 1)"
    )
    return top


def run_one(name: str, args: argparse.Namespace, command: str) -> bool:
    """Run subcommand `name`; print (and with --save, write) its document. True when ok."""
    from bench import common, figures

    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = Path(args.results) if args.results else common.RESULTS / f"{stamp}-{name}"
    results.mkdir(parents=True, exist_ok=True)
    args.results_dir = results
    started, before = figures.now(), figures.load_note()
    common.log(f"{name}: logs and raw data in {results}")
    outcome: dict[str, Any] = module(name).run(args)
    doc = figures.document(name, command, outcome, started, before)
    text = figures.dumps(doc)
    print(text, end="", flush=True)
    (results / f"{name}.json").write_text(text)
    if outcome.get("details") is not None:
        (results / f"{name}-details.json").write_text(figures.dumps(outcome["details"]))
    if args.save:
        common.log(f"figures written to {figures.save(doc)}; run `python -m bench report`")
    return bool(outcome.get("ok", True))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.subcommand == "report":
        from bench import report

        return report.main(check=args.check)
    from bench import common

    common.raise_on_sigterm()
    command = ".venv/bin/python -m bench " + shlex.join(argv)
    names = ALL if args.subcommand == "all" else (args.subcommand,)
    ok = True
    try:
        for name in names:
            if args.subcommand == "all":  # each with its own defaults
                sub = parser().parse_args([name])
                sub.save, sub.results = args.save, args.results and args.results / name
                ok = run_one(name, sub, command) and ok
            else:
                ok = run_one(name, args, command) and ok
    except KeyboardInterrupt:
        common.log("interrupted")
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
