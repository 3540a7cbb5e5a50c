"""The browser's way out: a local forward proxy that applies the target policy to every
connection Chromium makes.

A Playwright route handler does not see every request a page makes (WebSockets, service
workers, some prefetches), and it cannot see the address a name resolves to. So each Chromium
of a worker process sends all its traffic through this proxy instead (`--proxy-server`, and the
job's context proxy): for every CONNECT tunnel (https, wss) and every plain-http request, it
resolves the host itself, drops the addresses the policy refuses and connects to the first
allowed one, so the address checked is the address used. A refused target answers 403 with
`X-ScrapeMaster-Blocked`, and is remembered so the engine can log it and fail a job whose own
page was refused.

Hand-written (about 150 lines of asyncio) because it must run on the browser pool's event
loop in every worker process; kept libraries (proxy.py, mitmproxy) run their own processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from urllib.parse import urlsplit

from shared.targets import BlockedTarget, TargetPolicy

logger = logging.getLogger(__name__)

BLOCKED_HEADER = "X-ScrapeMaster-Blocked"
ERROR_HEADER = "X-ScrapeMaster-Error"  # why the proxy could not reach a target: dns_error, …
HEAD_LIMIT = 64 * 1024  # request line and headers
HEAD_TIMEOUT = 30.0
CONNECT_TIMEOUT = 15.0
IDLE_TIMEOUT = 300.0
MAX_CONNECTIONS = 512
# Chromium's own calls home (sign-in, component and extension updates, time checks): not a
# page's request, so answered here without even a name lookup. Flags don't silence them all.
BROWSER_SERVICE_HOSTS = frozenset(
    {
        "accounts.google.com",
        "update.googleapis.com",
        "clients1.google.com",
        "clients2.google.com",
        "clients4.google.com",
        "optimizationguide-pa.googleapis.com",
        "content-autofill.googleapis.com",
        "safebrowsing.googleapis.com",
        "redirector.gvt1.com",
    }
)
BROWSER_SERVICE_SUFFIXES = (".gvt1.com", ".gvt2.com")
_HOP_BY_HOP = {"proxy-connection", "proxy-authorization", "connection", "keep-alive", "te"}


class EgressProxy:
    """One per browser pool, on its loop: `await start()`, then `url` for Chromium."""

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy
        self.port = 0
        self.blocked: dict[str, str] = {}  # "host:port" -> reason, until `take_blocked`
        self.failed: dict[str, str] = {}  # "host:port" -> error type of the last failure
        self._server: asyncio.Server | None = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, limit=HEAD_LIMIT, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()  # open tunnels: the browser is gone
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    def take_blocked(self) -> dict[str, str]:
        """The targets refused since the last call (engines log them once per job)."""
        found, self.blocked = self.blocked, {}
        return found

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        async with self._slots:
            upstream: asyncio.StreamWriter | None = None
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
                first, _, rest = head.decode("latin-1").partition("\r\n")
                method, target, version = first.split(" ", 2)
                if method.upper() == "CONNECT":
                    host, port = _host_port(target, 443)
                    up_reader, upstream = await self._open(host, port, writer)
                    writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                else:
                    parts = urlsplit(target)
                    if parts.scheme != "http" or not parts.hostname:
                        await _answer(writer, 400, "only absolute http:// URLs or CONNECT")
                        return
                    host, port = parts.hostname, parts.port or 80
                    up_reader, upstream = await self._open(host, port, writer)
                    path = parts.path or "/"
                    if parts.query:
                        path += "?" + parts.query
                    lines = [
                        line
                        for line in rest.split("\r\n")
                        if line and line.split(":", 1)[0].strip().lower() not in _HOP_BY_HOP
                    ]
                    # one request per upstream connection: simple, and no request can reach
                    # a host other than the one checked
                    lines.append("Connection: close")
                    upstream.write(f"{method} {path} {version}\r\n".encode("latin-1"))
                    upstream.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
            except _Refused:
                return
            except (
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                TimeoutError,
                ConnectionError,
                ValueError,
                OSError,
            ):
                return
            finally:
                for stream in (upstream, writer):
                    if stream is not None:
                        with contextlib.suppress(Exception):
                            stream.close()

    async def _open(
        self, host: str, port: int, client: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to an allowed address of (host, port), or answer the client and refuse."""
        name = host.lower().rstrip(".")
        if name in BROWSER_SERVICE_HOSTS or name.endswith(BROWSER_SERVICE_SUFFIXES):
            await _answer(client, 403, "the browser's own service traffic is not forwarded")
            raise _Refused
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = self.policy.filter(
                host, port, list(dict.fromkeys(str(i[4][0]) for i in infos))
            )
        except BlockedTarget as exc:
            self.blocked[f"{host}:{port}"] = str(exc)
            await _answer(client, 403, str(exc), {BLOCKED_HEADER: str(exc)})
            raise _Refused from None
        except OSError:
            await self._failure(client, host, port, "dns_error")
            raise _Refused from None
        kind = "fetch_error"
        for address in addresses:
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(address.split("%", 1)[0], port), CONNECT_TIMEOUT
                )
            except ConnectionRefusedError:
                kind = "connection_refused"
            except TimeoutError:
                kind = "timeout"
            except OSError:
                continue
        await self._failure(client, host, port, kind)
        raise _Refused

    async def _failure(self, client: asyncio.StreamWriter, host: str, port: int, kind: str) -> None:
        """Answer 502 naming the failure, so the engine reports it as a direct fetch would."""
        if len(self.failed) > 1000:
            self.failed.clear()
        self.failed[f"{host}:{port}"] = kind
        await _answer(client, 502, f"{kind}: {host}:{port}", {ERROR_HEADER: kind})


class _Refused(Exception):
    """The client has been answered; nothing to relay."""


def _host_port(target: str, default: int) -> tuple[str, int]:
    parts = urlsplit(f"//{target}")
    if not parts.hostname:
        raise ValueError(f"bad target {target!r}")
    return parts.hostname, parts.port or default


async def _answer(
    writer: asyncio.StreamWriter, status: int, text: str, headers: dict[str, str] | None = None
) -> None:
    body = text.encode("utf-8", "replace")
    lines = [f"HTTP/1.1 {status} {'Forbidden' if status == 403 else 'Error'}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += ["Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(body)}"]
    lines += ["Connection: close", "", ""]
    with contextlib.suppress(Exception):
        writer.write("\r\n".join(lines).encode("latin-1", "replace") + body)
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF or idle timeout, then half-close the other side."""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), IDLE_TIMEOUT)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, TimeoutError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
