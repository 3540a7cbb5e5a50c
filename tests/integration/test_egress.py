"""The browser's egress guard on its own (scrapers/egress.py), over real loopback sockets: one
client connection never carries a request to a host other than the one judged, the answers
tell the client to close, and its limits (head size and time, connections, pool-proxy
listeners) hold. Targets are loopback sites the policy allow-lists; no other address."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from scrapers import egress as egress_module
from scrapers.egress import BLOCKED_HEADER, ERROR_HEADER, EgressProxy
from shared.targets import TargetPolicy, parse_allowlist

pytestmark = [pytest.mark.integration]

WAIT = 10.0  # seconds any answer may take on a busy machine


class Site:
    """A loopback HTTP server that keeps connections alive whatever the request says (the
    worst case for a proxy), answering each request with its own name; records the heads."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.heads: list[str] = []
        self.bodies: list[bytes] = []
        self.port = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> Site:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                self.heads.append(head)
                self.bodies.append(await read_body(reader, head))
                body = self.name.encode()
                if " /chunked " in head:  # the answer in two chunks, its length unsaid
                    half = len(body) // 2
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                        % (half, body[:half], len(body) - half, body[half:])
                    )
                else:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def read_body(reader: asyncio.StreamReader, head: str) -> bytes:
    """A request's body by its framing (Content-Length or chunked)."""
    lines = [line.lower() for line in head.split("\r\n")]
    if "transfer-encoding: chunked" in lines:
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
        return body
    length = next((int(x.split(":")[1]) for x in lines if x.startswith("content-length:")), 0)
    return await reader.readexactly(length)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def read_response(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    """One response (head, body by its framing) from `reader`; ("", b"") at EOF."""
    try:
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)).decode("latin-1")
    except (asyncio.IncompleteReadError, ConnectionError):
        return "", b""
    return head, await asyncio.wait_for(read_body(reader, head), WAIT)


async def closes(reader: asyncio.StreamReader) -> bool:
    """Whether the other side closes the connection (EOF, or a reset) within WAIT."""
    try:
        return await asyncio.wait_for(reader.read(65536), WAIT) == b""
    except ConnectionError:
        return True


def run(scenario: Callable[[EgressProxy, list[Site]], Awaitable[None]], sites: int = 2) -> None:
    """Run `scenario` against a started guard that allow-lists `sites` loopback sites."""

    async def main() -> None:
        started = [await Site(f"site-{n}").start() for n in range(sites)]
        allowed = ", ".join(f"127.0.0.1:{site.port}" for site in started)
        guard = EgressProxy(TargetPolicy(True, parse_allowlist(allowed)))
        await guard.start()
        try:
            await scenario(guard, started)
        finally:
            await guard.close()
            for site in started:
                site.close()

    asyncio.run(main())


async def connect(guard: EgressProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", guard.port)


def get(port: int, path: str = "/", extra: str = "") -> bytes:
    return (
        f"GET http://127.0.0.1:{port}{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Proxy-Connection: keep-alive\r\nConnection: keep-alive\r\n{extra}\r\n"
    ).encode()


def test_a_second_host_on_one_client_connection_never_reaches_the_first():
    async def scenario(guard: EgressProxy, sites: list[Site]) -> None:
        first, second = sites
        reader, writer = await connect(guard)
        writer.write(get(first.port, "/a"))
        head, body = await read_response(reader)
        assert head.startswith("HTTP/1.1 200") and body == b"site-0"
        # the client would reuse the connection for another host (a misbehaving or a
        # pipelining client): the guard judged the first host only
        writer.write(get(second.port, "/b"))
        head, body = await read_response(reader)
        assert body in (b"", b"site-1")  # answered by the right host, or closed: never site-0
        assert len(first.heads) == 1 and first.heads[0].startswith("GET /a ")
        writer.close()

    run(scenario)


def test_plain_http_answers_tell_the_client_to_close_and_close():
    async def scenario(guard: EgressProxy, sites: list[Site]) -> None:
        (site,) = sites
        reader, writer = await connect(guard)
        writer.write(get(site.port, "/p?q=1", "Keep-Alive: timeout=5\r\nTE: trailers\r\n"))
        head, body = await read_response(reader)
        assert body == b"site-0"
        lines = [line.lower() for line in head.split("\r\n")]
        assert "connection: close" in lines and not any("keep-alive" in x for x in lines)
        # upstream: origin-form, hop-by-hop headers dropped, one request per connection
        (sent,) = site.heads
        assert sent.startswith("GET /p?q=1 HTTP/1.1\r\n")
        sent_lines = [line.lower() for line in sent.split("\r\n")]
        assert "connection: close" in sent_lines
        assert not any(x.startswith(("proxy-connection", "keep-alive", "te:")) for x in sent_lines)
        # the site keeps its side open; the guard closes the client's once the answer is in
        assert await closes(reader)
        writer.close()

    run(scenario, sites=1)


def test_request_and_answer_bodies_are_relayed_whatever_their_framing():
    async def scenario(guard: EgressProxy, sites: list[Site]) -> None:
        (site,) = sites
        uploads = [
            "Content-Length: 7\r\n\r\nq=hello",
            "Transfer-Encoding: chunked\r\n\r\n3\r\nq=h\r\n4\r\nello\r\n0\r\n\r\n",
        ]
        for upload in uploads:
            reader, writer = await connect(guard)
            writer.write(
                f"POST http://127.0.0.1:{site.port}/form HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{site.port}\r\n{upload}".encode()
            )
            assert (await read_response(reader))[1] == b"site-0"
            writer.close()
        assert site.bodies == [b"q=hello", b"q=hello"]
        reader, writer = await connect(guard)
        writer.write(get(site.port, "/chunked"))
        head, body = await read_response(reader)
        assert body == b"site-0" and "transfer-encoding: chunked" in head.lower()
        writer.close()

    run(scenario, sites=1)


def test_a_tunnel_carries_keep_alive_to_its_one_host():
    async def scenario(guard: EgressProxy, sites: list[Site]) -> None:
        (site,) = sites
        reader, writer = await connect(guard)
        writer.write(f"CONNECT 127.0.0.1:{site.port} HTTP/1.1\r\n\r\n".encode())
        established = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert established.startswith(b"HTTP/1.1 200")
        for path in ("/1", "/2"):  # inside a tunnel the bytes are the client's own
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert (await read_response(reader))[1] == b"site-0"
        assert [h.split(" ")[1] for h in site.heads] == ["/1", "/2"]
        writer.close()

    run(scenario, sites=1)


def test_refused_unreachable_and_malformed_requests_are_answered_not_relayed():
    async def scenario(guard: EgressProxy, sites: list[Site]) -> None:
        (site,) = sites
        other = closed_port()  # loopback, not allow-listed: refused before any connection

        async def ask(request: str) -> str:
            reader, writer = await connect(guard)
            writer.write(request.encode())
            head, _ = await read_response(reader)
            writer.close()
            return head

        refused = await ask(f"CONNECT 127.0.0.1:{other} HTTP/1.1\r\n\r\n")
        assert refused.startswith("HTTP/1.1 403") and BLOCKED_HEADER in refused
        assert f"127.0.0.1:{other}" in guard.take_blocked()
        assert guard.take_blocked() == {}  # told once
        site.close()
        assert site.server is not None
        await site.server.wait_closed()
        gone = await ask(f"GET http://127.0.0.1:{site.port}/ HTTP/1.1\r\n\r\n")
        assert gone.startswith("HTTP/1.1 502") and f"{ERROR_HEADER}: connection_refused" in gone
        assert guard.failed[f"127.0.0.1:{site.port}"] == "connection_refused"
        assert (await ask("GET /relative HTTP/1.1\r\n\r\n")).startswith("HTTP/1.1 400")
        assert (await ask("GET https://127.0.0.1/ HTTP/1.1\r\n\r\n")).startswith("HTTP/1.1 400")
        # Chromium's calls home are answered here, without even a name lookup
        home = await ask("CONNECT update.googleapis.com:443 HTTP/1.1\r\n\r\n")
        assert home.startswith("HTTP/1.1 403")

    run(scenario, sites=1)


def test_a_head_too_long_or_too_slow_ends_the_connection(monkeypatch):
    monkeypatch.setattr(egress_module, "HEAD_TIMEOUT", 1.0)

    async def scenario(guard: EgressProxy, sites: list[Site]) -> None:
        (site,) = sites
        reader, writer = await connect(guard)
        huge = "X-Pad: " + "a" * (egress_module.HEAD_LIMIT + 1) + "\r\n"
        writer.write(get(site.port, "/", huge))
        assert await closes(reader)
        writer.close()
        reader, writer = await connect(guard)
        writer.write(f"GET http://127.0.0.1:{site.port}/ HTTP/1.1\r\n".encode())  # never ends
        assert await closes(reader)
        writer.close()
        assert site.heads == []  # neither reached the site

    run(scenario, sites=1)


def test_connections_beyond_the_limit_wait_for_a_free_slot(monkeypatch):
    monkeypatch.setattr(egress_module, "MAX_CONNECTIONS", 1)

    async def scenario(guard: EgressProxy, sites: list[Site]) -> None:
        (site,) = sites
        reader, writer = await connect(guard)
        writer.write(f"CONNECT 127.0.0.1:{site.port} HTTP/1.1\r\n\r\n".encode())
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)  # holds the one slot
        waiting_reader, waiting = await connect(guard)
        waiting.write(get(site.port, "/next"))
        pending = asyncio.ensure_future(read_response(waiting_reader))
        done, _ = await asyncio.wait([pending], timeout=0.5)
        assert not done and len(site.heads) == 0  # not served while the slot is taken
        writer.close()  # the tunnel ends: its slot goes to the waiting connection
        head, body = await asyncio.wait_for(pending, WAIT)
        assert head.startswith("HTTP/1.1 200") and body == b"site-0"
        waiting.close()

    run(scenario, sites=1)


def test_pool_proxy_listeners_are_bounded_oldest_closed_first(monkeypatch):
    monkeypatch.setattr(egress_module, "MAX_UPSTREAMS", 2)

    async def scenario(guard: EgressProxy, sites: list[Site]) -> None:
        proxies = [f"http://127.0.0.1:{closed_port()}" for _ in range(3)]
        first = await guard.via(proxies[0])
        assert await guard.via(proxies[0]) == first  # one listener per proxy
        await guard.via(proxies[1])
        await guard.via(proxies[2])  # a third: the oldest listener is closed
        port = int(first.rsplit(":", 1)[1])
        with pytest.raises(OSError):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)
        again = await guard.via(proxies[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", int(again.rsplit(":", 1)[1]))
        writer.close()

    run(scenario, sites=0)
