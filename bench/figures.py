"""A run's figures as a JSON document: what `python -m bench NAME --save` writes to
bench/figures/NAME.json, and what `python -m bench report` turns into docs/benchmarks.md and
the README's table.

    {"name": "scrapy",
     "measured_at": "2026-12-02T16:13:14+00:00",
     "command": ".venv/bin/python -m bench scrapy --repeat 5 --save",
     "machine": {"cpus": 2, "memory_gib": 23.5, "python": "3.11.2", "scrapy": "2.13.3",
                 "playwright": "1.52.0", "chromium": "Chromium 137...", "load": "..."},
     "figures": {"service_pages_per_s": 309, "bare_scrapy_pages_per_s": 306, ...},
     "ratios": {"service_pages_per_s / bare_scrapy_pages_per_s": 1.01},
     "notes": ["..."]}

A ratio's key names its two figures, "A / B": every figure with a bare-tool counterpart in the
same run is reported as a ratio to it. Documents seeded from the figures the docs gave before
they were generated carry `"seeded_from": "docs"`, their original date and command, and the
command that measures the same today (`reproduce`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

FIGURES = Path(__file__).resolve().parent / "figures"
KEYS = ("name", "measured_at", "command", "machine", "figures", "ratios")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _chromium() -> str | None:
    from shared.settings import Settings

    try:
        out = subprocess.run(
            [Settings().chromium_path, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().split(" built on")[0] or None


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def machine(load_before: str) -> dict[str, Any]:
    """The machine a run measured, with the load before and after it."""
    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "scrapy": _version("scrapy"),
        "playwright": _version("playwright"),
        "chromium": _chromium(),
        "load": f"before: {load_before}; after: {load_note()}",
    }


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def document(
    name: str, command: str, outcome: dict[str, Any], started: str, load_before: str
) -> dict:
    """The document of a run that started at `started` (ISO 8601, UTC)."""
    doc: dict[str, Any] = {
        "name": name,
        "measured_at": started,
        "command": command,
        "machine": machine(load_before),
        "figures": outcome.get("figures", {}),
        "ratios": outcome.get("ratios", {}),
    }
    if outcome.get("notes"):
        doc["notes"] = outcome["notes"]
    return doc


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


def save(doc: dict, folder: Path = FIGURES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{doc['name']}.json"
    path.write_text(dumps(doc))
    return path


def load(name: str, folder: Path = FIGURES) -> dict | None:
    path = folder / f"{name}.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    missing = [k for k in KEYS if k not in doc]
    if missing:
        raise ValueError(f"{path}: missing {missing}")
    return doc
