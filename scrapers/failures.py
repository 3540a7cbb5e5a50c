"""Failed fetches as sentences a person can read; the raw detail goes to the job log only.

Both engines name a failure with one of these types and say it with the same words, so a
refused connection reads the same whether Scrapy or Chromium met it.
"""

from __future__ import annotations

from http import HTTPStatus

SENTENCES = {
    "dns_error": "The host name of {url} could not be resolved (DNS lookup failed).",
    "connection_refused": "Could not connect to {url}: the connection was refused "
    "(nothing accepts connections at that address and port).",
    "timeout": "The server at {url} did not answer in time: the request timed out.",
    "connection_lost": "The connection to {url} was closed before a complete answer arrived.",
    "robots_forbidden": "The site's robots.txt forbids fetching {url} (config.obey_robots).",
    "page_too_large": "The page at {url} is larger than MAX_PAGE_BYTES and was not read.",
    "fetch_error": "Could not fetch {url}.",
}


def sentence(kind: str, url: str) -> str:
    """The readable message of failure `kind` on `url`."""
    return SENTENCES.get(kind, SENTENCES["fetch_error"]).format(url=url)


def problem(kind: str, url: str) -> dict[str, str]:
    """A failure as the {type, message} stored on a job."""
    return {"type": kind if kind in SENTENCES else "fetch_error", "message": sentence(kind, url)}


def http_problem(status: int, url: str) -> dict[str, str]:
    """An answer outside 2xx as {type, message}."""
    try:
        phrase = f" {HTTPStatus(status).phrase}"
    except ValueError:
        phrase = ""
    return {
        "type": "http_error",
        "message": f"The server answered HTTP {status}{phrase} for {url}.",
    }


def job_timeout(seconds: object, stopped: bool = True) -> dict[str, str]:
    """The whole job ran past its timeout_seconds."""
    how = "was stopped" if stopped else "did not stop and was abandoned"
    return {
        "type": "timeout",
        "message": f"The job ran longer than its timeout_seconds ({seconds} s) and {how}; "
        "the items found so far are kept.",
    }


INTERNAL = {
    "type": "internal_error",
    "message": "The crawl stopped because of an internal error; the job log has the details.",
}

# Chromium's net error names -> our failure types
CHROMIUM_ERRORS = {
    "ERR_NAME_NOT_RESOLVED": "dns_error",
    "ERR_NAME_RESOLUTION_FAILED": "dns_error",
    "ERR_CONNECTION_REFUSED": "connection_refused",
    "ERR_TIMED_OUT": "timeout",
    "ERR_CONNECTION_TIMED_OUT": "timeout",
    "ERR_CONNECTION_CLOSED": "connection_lost",
    "ERR_CONNECTION_RESET": "connection_lost",
    "ERR_EMPTY_RESPONSE": "connection_lost",
    "ERR_CONNECTION_ABORTED": "connection_lost",
    "ERR_INCOMPLETE_CHUNKED_ENCODING": "connection_lost",
    "ERR_CONTENT_LENGTH_MISMATCH": "connection_lost",
}


def chromium_kind(text: str) -> str | None:
    """The failure type of a Chromium navigation error text, or None when unknown."""
    for name, kind in CHROMIUM_ERRORS.items():
        if name in text:
            return kind
    return None
