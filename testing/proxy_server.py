"""A tiny HTTP forward proxy on 127.0.0.1 for tests: counts what it relays, can play banned."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        return

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        proxy = self.server.owner
        proxy.record(self.path)
        if proxy.mode == "forbid":
            self._answer(403, b"<html><body>Forbidden by the target</body></html>")
            return
        if proxy.mode == "captcha":
            self._answer(200, b"<html><head><title>Captcha check</title></head></html>")
            return
        parts = urlsplit(self.path)
        if not parts.hostname:
            self._answer(400, b"absolute URL required")
            return
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream.request("GET", path, headers=headers)
            reply = upstream.getresponse()
            body = reply.read()
        except OSError as exc:
            self._answer(502, f"upstream failed: {exc}".encode())
            return
        finally:
            upstream.close()
        self.send_response(reply.status)
        for key, value in reply.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: ForwardProxy) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", owner.requested_port), _Handler)


class ForwardProxy:
    """An HTTP forward proxy; `mode` is "forward", "forbid" (403) or "captcha"."""

    def __init__(self, mode: str = "forward", port: int = 0) -> None:
        self.mode = mode
        self.requested_port = port
        self._hits: list[str] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None

    def record(self, url: str) -> None:
        with self._lock:
            self._hits.append(url)

    @property
    def hits(self) -> list[str]:
        """The absolute URLs requested through this proxy, in order."""
        with self._lock:
            return list(self._hits)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ForwardProxy:
        self._server = _Server(self)
        threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ForwardProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
