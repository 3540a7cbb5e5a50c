"""Limits on JSON request bodies, checked before any parsing work can grow with the input.

Python's json module recurses once per nesting level (a body of 100,000 `[` exhausts the
stack), refuses integers over 4,300 digits with a ValueError, and accepts lone UTF-16
surrogates (`"\\ud800"`) that MongoDB and every JSON encoder then refuse. Each of these used to
surface as a 500. Here a linear scan bounds the nesting first, a parse hook bounds the digits
of numbers, and a walk of the result refuses surrogates; the answer is a 400 in the error shape.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # objects and arrays nested in each other
MAX_NUMBER_CHARS = 40  # digits (and sign, exponent) of one number


class BadJson(ValueError):
    """The body breaks one of the limits; str() says which, for the user."""


def nesting_depth(raw: bytes, limit: int) -> int:
    """The deepest nesting of `raw` outside strings, stopping once it passes `limit`."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _number(text: str) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        raise BadJson(f"a number in the body has more than {MAX_NUMBER_CHARS} characters")
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _walk(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadJson(
                    "the body contains a lone UTF-16 surrogate (\\ud800-\\udfff)"
                ) from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check(raw: bytes) -> None:
    """Raise BadJson when `raw` breaks a limit; malformed JSON is left to the normal parser."""
    if nesting_depth(raw, MAX_DEPTH) > MAX_DEPTH:
        raise BadJson(f"the body nests objects or arrays deeper than {MAX_DEPTH} levels")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return  # the parser answers "not valid JSON"
    try:
        value = json.loads(text, parse_int=_number, parse_float=_number)
    except BadJson:
        raise
    except ValueError:
        return
    _walk(value)
