"""Limits on JSON request bodies, checked before any parsing work can grow with the input.

Python's json module recurses once per nesting level (a body of 100,000 `[` exhausts the
stack), refuses integers over 4,300 digits with a ValueError, and accepts lone UTF-16
surrogates (`"\\ud800"`) that MongoDB and every JSON encoder then refuse. Each of these used to
surface as a 500. Here a linear scan bounds the nesting first, a parse hook bounds the digits
of numbers, and a walk of the result refuses surrogates; the answer is a 400 in the error shape.

The guard's parse is the request's only one: it keeps the value in the request's environ, and
the blueprints' argument parser (`Blueprint` here, flask-smorest's with `GuardedParser`) reads
it from there instead of decoding the body again.
"""

from __future__ import annotations

import json
from typing import Any

import flask
import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

MAX_DEPTH = 32  # objects and arrays nested in each other
MAX_NUMBER_CHARS = 40  # digits (and sign, exponent) of one number
_PARSED = "scrapemaster.json"  # the environ key of a body's value, once the guard decoded it


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


def load(raw: bytes) -> Any:
    """The value of the JSON document `raw`. BadJson when it breaks a limit; when it is not
    JSON at all, the json module's (or UTF-8's) own error, as the argument parser expects."""
    if nesting_depth(raw, MAX_DEPTH) > MAX_DEPTH:
        raise BadJson(f"the body nests objects or arrays deeper than {MAX_DEPTH} levels")
    value = json.loads(raw.decode("utf-8"), parse_int=_number, parse_float=_number)
    _walk(value)
    return value


def check_request(request: flask.Request) -> None:
    """Decode a JSON request body within the limits and keep its value for the argument parser;
    BadJson when it breaks one. Malformed JSON is left to the parser, which answers 400."""
    if not request.is_json or request.content_length == 0:
        return
    try:
        request.environ[_PARSED] = load(request.get_data(cache=True))
    except BadJson:
        raise
    except ValueError:  # not JSON (JSONDecodeError and UnicodeDecodeError are ValueErrors)
        return


class GuardedParser(FlaskParser):
    """webargs' Flask parser, taking the JSON body's value the guard decoded."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        if _PARSED in req.environ:
            return req.environ[_PARSED]
        # the guard did not decode it (malformed, or no guard ran): webargs' own error path
        return core.parse_json(req.get_data(cache=True))


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint whose arguments come from the guard's one parse."""

    ARGUMENTS_PARSER = GuardedParser()
