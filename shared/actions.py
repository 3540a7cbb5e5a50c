"""Browser actions of a job (`config.actions`, `config.next_click`): the step types, their
fields and limits, and how a step is named in messages. Pure rules that the API (422s) and
the browser engine (scrapers/actions.py) share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.selectors import compile_selector

MAX_ACTIONS = 50
MAX_WAIT_MS = 30_000
MAX_SCROLLS = 200
MAX_VALUE_CHARS = 10_000
MAX_SCRIPT_CHARS = 20_000
MAX_KEY_CHARS = 50
MAX_STEP_TIMEOUT = 120  # seconds: a step's own `timeout_seconds` (the job's time bounds it too)

# type → (required fields, optional fields); every step may also carry `timeout_seconds`
STEP_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "click": (("selector",), ()),
    "fill": (("selector", "value"), ()),
    "press": (("key",), ("selector",)),
    "select": (("selector", "value"), ()),
    "wait": ((), ("selector", "milliseconds")),
    "scroll": ((), ("times",)),
    "screenshot": ((), ("full_page",)),
    "evaluate": (("script",), ()),
}
ACTION_TYPES = tuple(STEP_FIELDS)

# config options that only a browser can carry out: `auto` sends such a job to it
BROWSER_REQUIRED = ("actions", "next_click", "login")


def browser_required(config: Mapping[str, Any] | None) -> list[str]:
    """The options of a job's config that need the browser (actions, next_click, login)."""
    return [name for name in BROWSER_REQUIRED if (config or {}).get(name)]


def required_decision(names: list[str]) -> dict[str, Any]:
    """`auto`'s decision for a job whose options `names` only a browser carries out (the
    shape of shared.jobspec.AutoDecision; no page is measured)."""
    return {
        "engine": "playwright",
        "reason": f"the job asks for {' and '.join(names)}, which need a browser → playwright",
        "static_items": None,
        "rendered_items": None,
    }


def element_selector_problem(value: Any) -> str | None:
    """Why `value` cannot name an element of the page (CSS or XPath), or None."""
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty CSS or XPath selector"
    try:
        selector = compile_selector(value)
    except ValueError as exc:
        return str(exc).rstrip(".")
    if selector.kind == "jmespath":
        return "must be a CSS or XPath selector (jmespath: reads JSON, not a page)"
    return None


def _text_problem(value: Any, limit: int, empty_ok: bool = True) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if not empty_ok and not value.strip():
        return "must not be empty"
    if len(value) > limit:
        return f"must be at most {limit} characters"
    return None


def _int_problem(value: Any, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"must be an integer from {low} to {high}"
    return None


def _field_problem(kind: str, name: str, value: Any) -> str | None:
    if name == "selector":
        return element_selector_problem(value)
    if name == "value" and kind == "select":
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and len(v) <= 1000 for v in values):
            return "must be a string (an option's value or label) or a list of them"
        return None
    if name == "value":
        return _text_problem(value, MAX_VALUE_CHARS)
    if name == "key":
        return _text_problem(value, MAX_KEY_CHARS, empty_ok=False)
    if name == "script":
        return _text_problem(value, MAX_SCRIPT_CHARS, empty_ok=False)
    if name == "milliseconds":
        return _int_problem(value, 0, MAX_WAIT_MS)
    if name == "times":
        return _int_problem(value, 1, MAX_SCROLLS)
    if name == "full_page":
        return None if isinstance(value, bool) else "must be true or false"
    if name == "timeout_seconds":
        return _int_problem(value, 1, MAX_STEP_TIMEOUT)
    return None


def step_problems(step: Any) -> list[str]:
    """Why `step` is not a valid action (empty when it is)."""
    if not isinstance(step, Mapping):
        return ["must be an object with a type"]
    kind = step.get("type")
    if kind not in STEP_FIELDS:
        return [f"type must be one of {', '.join(ACTION_TYPES)}"]
    required, optional = STEP_FIELDS[kind]
    problems = [f"{kind} needs {name}" for name in required if name not in step]
    known = {"type", "timeout_seconds", *required, *optional}
    problems += [f"{kind} takes no field {name!r}" for name in step if name not in known]
    for name, value in step.items():
        if name in known and name != "type":
            problem = _field_problem(kind, name, value)
            if problem:
                problems.append(f"{name} {problem}")
    if kind == "wait" and ("selector" in step) == ("milliseconds" in step):
        problems.append("wait needs either a selector or milliseconds")
    return problems


def actions_problems(actions: Any) -> dict[int, list[str]]:
    """Problems of `config.actions` by step index (0-based; the messages count from 1).
    Key -1: the list as a whole."""
    if actions is None:
        return {}
    if not isinstance(actions, list):
        return {-1: ["must be a list of steps"]}
    if len(actions) > MAX_ACTIONS:
        return {-1: [f"at most {MAX_ACTIONS} steps"]}
    found: dict[int, list[str]] = {}
    for index, step in enumerate(actions):
        problems = step_problems(step)
        if problems:
            found[index] = [f"step {index + 1}: {'; '.join(problems)}."]
    return found


def describe(step: Mapping[str, Any]) -> str:
    """A step as messages name it: `click button.accept`, `wait 500 ms`, `press Enter`."""
    kind = str(step.get("type"))
    if kind == "press":
        target = f" in {step['selector']}" if step.get("selector") else ""
        return f"press {step.get('key')}{target}"
    if kind == "wait" and "milliseconds" in step:
        return f"wait {step['milliseconds']} ms"
    if kind == "scroll":
        return f"scroll {step.get('times', 1)}"
    if kind == "screenshot":
        return "screenshot (full page)" if step.get("full_page") else "screenshot"
    if kind == "evaluate":
        script = " ".join(str(step.get("script", "")).split())
        return f"evaluate {script[:40]}…" if len(script) > 40 else f"evaluate {script}"
    return f"{kind} {step.get('selector')}"
