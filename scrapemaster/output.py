"""What the CLI prints: JSON for scripts, rich tables and key-value blocks for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

# piped, a table is as wide as its content needs (up to 240 columns), not cut to 80
out = Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, markup=False, highlight=False)


def emit_json(value: Any) -> None:
    """`value` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def emit_json_array(values: Iterable[Any]) -> int:
    """A JSON array written element by element (an iterator is never held in memory)."""
    count = 0
    sys.stdout.write("[")
    for value in values:
        sys.stdout.write(("\n  " if count == 0 else ",\n  ") + json.dumps(value, default=str))
        count += 1
    sys.stdout.write("\n]\n" if count else "]\n")
    sys.stdout.flush()
    return count


def line(text: str) -> None:
    """One plain line on stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """One plain line on stderr (progress and remarks, never data)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def cell(value: Any, width: int = 60) -> str:
    """A table cell: lists and dicts as compact JSON, long text cut with an ellipsis."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> None:
    """A table on stdout."""
    grid = Table(*columns, caption=caption or None, show_edge=False, pad_edge=False)
    for row in rows:
        grid.add_row(*(cell(v) for v in row))
    out.print(grid)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """`key  value` lines, aligned, skipping empty values."""
    shown = [(k, v) for k, v in pairs if v not in (None, "", [], {})]
    width = max((len(k) for k, _ in shown), default=0)
    for key, value in shown:
        line(f"{key.ljust(width)}  {cell(value, 200)}")


def size(n: float) -> str:
    """Bytes for people: 512 B, 12.3 kB, 4.1 MB."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def short(job_id: str | None) -> str:
    return (job_id or "")[:12]
