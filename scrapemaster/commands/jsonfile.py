"""A JSON value from a file named on the command line (`-`: standard input), or a clear
`click.BadParameter` naming the option: job bodies, action lists and login objects alike."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click


def read_json(file: str, hint: str, wanted: type, what: str) -> Any:
    """The JSON in `file`, which must be of type `wanted` (`what` names it in the error)."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {file}: {exc.strerror}", param_hint=hint) from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{file} is not JSON: {exc}", param_hint=hint) from None
    if not isinstance(value, wanted):
        raise click.BadParameter(f"{file} must hold {what}", param_hint=hint)
    return value
