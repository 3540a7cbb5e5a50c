"""gunicorn's access log without credentials: `?token=` (an access token or an API key, which
browsers must put in the URL of an EventSource or a WebSocket) is written as `[redacted]`."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

_SECRET = re.compile(r"((?:^|[?&;])(?:token|access_token|api_key)=)[^&;\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` (a request line, a query string, a URL) with credential values replaced."""
    return _SECRET.sub(r"\1[redacted]", text)


class RedactingLogger(Logger):
    """`--logger-class api.access_log.RedactingLogger`: the request line, query string and
    referer of each access log line pass through `redact`."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
