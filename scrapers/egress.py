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

A job through an admin's pool proxy keeps this guard in front: `via(pool proxy)` opens a
listener that judges each target exactly as above, then forwards to the pool proxy (CONNECT
through it, or the absolute-URI request) instead of connecting itself. The pool proxy is
infrastructure, reached whatever its address; the targets behind it are still judged.

Hand-written (about 250 lines of asyncio) because it must run on the browser pool's event
loop in every worker process; kept libraries (proxy.py, mitmproxy) run their own processes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from shared.targets import BlockedTarget, TargetPolicy

logger = logging.getLogger(__name__)

BLOCKED_HEADER = "X-ScrapeMaster-Blocked"
ERROR_HEADER = "X-ScrapeMaster-Error"  # why the proxy could not reach a target: dns_error, …
PROXY_ERROR_HEADER = "X-ScrapeMaster-Proxy-Error"  # the job's pool proxy itself failed: a ban
MAX_UPSTREAMS = 256  # listeners kept for pool proxies; beyond, the oldest is closed
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


@dataclass(frozen=True)
class Upstream:
    """An admin's pool proxy the guard forwards to (http:// or https:// to the proxy itself)."""

    host: str
    port: int
    tls: bool
    authorization: str | None  # the Proxy-Authorization value, when the URL has credentials
    judged: bool = False  # a job's own proxy URL (not the pool's): its address is judged too

    @classmethod
    def parse(cls, url: str, judged: bool = False) -> Upstream:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a pool proxy is an http:// or https:// URL with a host")
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.hostname, port, parts.scheme == "https", authorization, judged)


class EgressProxy:
    """One per browser pool, on its loop: `await start()`, then `url` for Chromium."""

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy
        self.port = 0
        self.blocked: dict[str, str] = {}  # "host:port" -> reason, until `take_blocked`
        self.failed: dict[str, str] = {}  # "host:port" -> error type of the last failure
        self.proxy_failed: set[str] = set()  # of those, the ones where a pool proxy failed
        self._server: asyncio.Server | None = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._tasks: set[asyncio.Task] = set()
        self._upstreams: dict[str, asyncio.Server] = {}  # pool proxy URL -> its guard listener

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, limit=HEAD_LIMIT, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def via(self, upstream: str, judged: bool = False) -> str:
        """The URL of a guard that judges every target as this one does, then forwards to
        the proxy `upstream` (one listener per proxy, kept while the pool lives). A pool proxy
        is reached whatever its address; a job's own proxy URL (`judged`) only where the
        policy allows, as the Scrapy engine does."""
        key = f"{judged}|{upstream}"
        server = self._upstreams.get(key)
        if server is None:
            if len(self._upstreams) >= MAX_UPSTREAMS:
                oldest = next(iter(self._upstreams))
                self._upstreams.pop(oldest).close()
            handler = functools.partial(self._handle, upstream=Upstream.parse(upstream, judged))
            server = await asyncio.start_server(
                handler, "127.0.0.1", 0, limit=HEAD_LIMIT, reuse_address=True
            )
            self._upstreams[key] = server
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        for server in self._upstreams.values():
            server.close()
        self._upstreams.clear()
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

    async def _handle(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: Upstream | None = None,
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        async with self._slots:
            upstream_writer: asyncio.StreamWriter | None = None
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
                first, _, rest = head.decode("latin-1").partition("\r\n")
                method, target, version = first.split(" ", 2)
                if method.upper() == "CONNECT":
                    host, port = _host_port(target, 443)
                    if upstream is None:
                        up_reader, up_writer = await self._open(host, port, writer)
                    else:
                        up_reader, up_writer = await self._tunnel(upstream, host, port, writer)
                    writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                else:
                    parts = urlsplit(target)
                    if parts.scheme != "http" or not parts.hostname:
                        await _answer(writer, 400, "only absolute http:// URLs or CONNECT")
                        return
                    host, port = parts.hostname, parts.port or 80
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
                    if upstream is None:
                        up_reader, up_writer = await self._open(host, port, writer)
                    else:
                        await self._judge(host, port, writer)
                        up_reader, up_writer = await self._dial(upstream, host, port, writer)
                        path = parts._replace(fragment="").geturl()  # a proxy takes the URL
                        if upstream.authorization:
                            lines.append(f"Proxy-Authorization: {upstream.authorization}")
                    up_writer.write(f"{method} {path} {version}\r\n".encode("latin-1"))
                    up_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                upstream_writer = up_writer
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
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
                for stream in (upstream_writer, writer):
                    if stream is not None:
                        with contextlib.suppress(Exception):
                            stream.close()

    async def _open(
        self, host: str, port: int, client: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to an allowed address of (host, port), or answer the client and refuse."""
        addresses = await self._judge(host, port, client)
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

    async def _judge(self, host: str, port: int, client: asyncio.StreamWriter) -> list[str]:
        """The addresses of (host, port) the policy allows; else answer the client, refuse."""
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
        return addresses

    async def _dial(
        self, upstream: Upstream, host: str, port: int, client: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the pool proxy (infrastructure: whatever its address), or answer the
        client with a failure that bans that proxy for the job."""
        address = upstream.host
        if upstream.judged:
            address = (await self._judge(upstream.host, upstream.port, client))[0]
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(
                    address.split("%", 1)[0],
                    upstream.port,
                    ssl=ssl.create_default_context() if upstream.tls else None,
                    server_hostname=upstream.host if upstream.tls else None,
                ),
                CONNECT_TIMEOUT,
            )
        except ConnectionRefusedError:
            kind = "connection_refused"
        except TimeoutError:
            kind = "timeout"
        except OSError:
            kind = "fetch_error"
        await self._failure(client, host, port, kind, proxy=True)
        raise _Refused

    async def _tunnel(
        self, upstream: Upstream, host: str, port: int, client: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A judged target's CONNECT tunnel through the pool proxy."""
        await self._judge(host, port, client)
        up_reader, up_writer = await self._dial(upstream, host, port, client)
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if upstream.authorization:
            lines.append(f"Proxy-Authorization: {upstream.authorization}")
        up_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            head = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
            status = int(head.split(b" ", 2)[1])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status = 0
        except (ValueError, IndexError, OSError):
            status = 0
        if status == 200:
            return up_reader, up_writer
        with contextlib.suppress(Exception):
            up_writer.close()
        kind = "timeout" if status == 0 else "fetch_error"
        await self._failure(client, host, port, kind, proxy=True)
        raise _Refused

    async def _failure(
        self, client: asyncio.StreamWriter, host: str, port: int, kind: str, proxy: bool = False
    ) -> None:
        """Answer 502 naming the failure, so the engine reports it as a direct fetch would
        (`proxy`: the job's pool proxy failed, not the target; the engine bans it)."""
        if len(self.failed) > 1000:
            self.failed.clear()
            self.proxy_failed.clear()
        self.failed[f"{host}:{port}"] = kind
        headers = {ERROR_HEADER: kind}
        if proxy:
            self.proxy_failed.add(f"{host}:{port}")
            headers[PROXY_ERROR_HEADER] = kind
        else:
            self.proxy_failed.discard(f"{host}:{port}")
        await _answer(client, 502, f"{kind}: {host}:{port}", headers)


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
