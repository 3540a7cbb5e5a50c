"""The browser's egress guard in front of a pool proxy, over real loopback sockets: a target
the policy refuses is answered 403 and never reaches the pool proxy; an allowed one goes
through it, with the pool proxy's credentials; a dead pool proxy is named as the failure."""

from __future__ import annotations

import asyncio
import base64

import pytest

from deploy import embedded
from scrapers.egress import BLOCKED_HEADER, PROXY_ERROR_HEADER, EgressProxy
from shared.targets import TargetPolicy, parse_allowlist

pytestmark = [pytest.mark.integration]


class RecordingProxy:
    """A pool proxy that records each request head and answers 200 (CONNECT: then closes)."""

    def __init__(self) -> None:
        self.heads: list[str] = []
        self.port = 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        self.heads.append(head)
        if head.startswith("CONNECT"):
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


async def ask(url: str, head: str) -> str:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head.encode("latin-1"))
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return answer.decode("latin-1")


def test_the_guard_judges_targets_then_forwards_to_the_pool_proxy():
    async def scenario() -> None:
        pool_proxy = RecordingProxy()
        server = await pool_proxy.start()
        allowed = embedded.free_port()
        blocked = embedded.free_port()
        # block private targets; the pool proxy's port is not allow-listed (it is exempt)
        policy = TargetPolicy(True, parse_allowlist(f"127.0.0.1:{allowed}"))
        egress = EgressProxy(policy)
        await egress.start()
        try:
            via = await egress.via(f"http://al%40ice:s3cret@127.0.0.1:{pool_proxy.port}")
            assert via == await egress.via(f"http://al%40ice:s3cret@127.0.0.1:{pool_proxy.port}")

            refused = await ask(via, f"GET http://127.0.0.1:{blocked}/x HTTP/1.1\r\n\r\n")
            tunnel = await ask(via, f"CONNECT 127.0.0.1:{blocked} HTTP/1.1\r\n\r\n")
            assert refused.startswith("HTTP/1.1 403") and BLOCKED_HEADER in refused
            assert "loopback" in refused
            assert tunnel.startswith("HTTP/1.1 403")
            assert pool_proxy.heads == []  # neither reached the pool proxy
            assert f"127.0.0.1:{blocked}" in egress.take_blocked()

            page = await ask(
                via, f"GET http://127.0.0.1:{allowed}/page?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            assert page.endswith("ok")
            (head,) = pool_proxy.heads
            assert head.startswith(f"GET http://127.0.0.1:{allowed}/page?q=1 HTTP/1.1\r\n")
            credentials = base64.b64encode(b"al@ice:s3cret").decode()
            assert f"Proxy-Authorization: Basic {credentials}" in head

            opened = await ask(via, f"CONNECT 127.0.0.1:{allowed} HTTP/1.1\r\n\r\n")
            assert opened.startswith("HTTP/1.1 200")
            assert pool_proxy.heads[-1].startswith(f"CONNECT 127.0.0.1:{allowed} HTTP/1.1\r\n")

            server.close()
            await server.wait_closed()
            dead = await ask(via, f"GET http://127.0.0.1:{allowed}/ HTTP/1.1\r\n\r\n")
            assert dead.startswith("HTTP/1.1 502") and PROXY_ERROR_HEADER in dead
            assert f"{PROXY_ERROR_HEADER}: connection_refused" in dead
            assert f"127.0.0.1:{allowed}" in egress.proxy_failed
        finally:
            await egress.close()

    asyncio.run(scenario())


def test_a_jobs_own_proxy_url_is_judged_like_a_target():
    async def scenario() -> None:
        pool_proxy = RecordingProxy()
        server = await pool_proxy.start()
        allowed = embedded.free_port()
        egress = EgressProxy(TargetPolicy(True, parse_allowlist(f"127.0.0.1:{allowed}")))
        await egress.start()
        try:
            via = await egress.via(f"http://127.0.0.1:{pool_proxy.port}", judged=True)
            answer = await ask(via, f"GET http://127.0.0.1:{allowed}/ HTTP/1.1\r\n\r\n")
            # the target would pass; the loopback proxy the job named does not
            assert answer.startswith("HTTP/1.1 403") and pool_proxy.heads == []
        finally:
            await egress.close()
            server.close()

    asyncio.run(scenario())
