"""The target policy on the Scrapy engine's connections: a name resolver that drops blocked
addresses.

Twisted's HostnameEndpoint, which Scrapy's HTTP agent uses for every direct connection
(start URLs, followed links, each redirect hop, robots.txt), asks the reactor's name resolver
for the addresses of (host, port) and connects only to what it returns. Wrapping that resolver
judges the address actually connected to, IP literals included (they resolve to themselves),
with no window between the check and the connection. When nothing is left, the connection
fails as a lookup failure; `blocked_reason` tells the engine it was the policy.

Admin-configured pool proxies are infrastructure: `exempt_proxy` lets the connection to a pool
proxy's (host, port) through whatever its address (a squid on the private network is the usual
set-up). The targets behind it are judged before the request goes to the proxy
(scrapers/proxies.py), and a direct request to that (host, port) is judged as any target.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from zope.interface import implementer

from shared.targets import TargetPolicy, parse_ip

_lock = threading.Lock()
_blocked: dict[tuple[str, int], str] = {}  # (host, port) -> reason, for error messages
_MAX_REMEMBERED = 10_000
_exempt: set[tuple[str, int]] = set()  # pool proxies' (host, port), as their URLs spell them
_state: dict[str, TargetPolicy] = {}  # the installed policy, for judging targets elsewhere


def exempt_proxy(url: str) -> None:
    """Let this process's connections to the pool proxy at `url` through, whatever its address."""
    parts = urlsplit(url)
    if parts.hostname:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with _lock:
            if len(_exempt) > _MAX_REMEMBERED:
                _exempt.clear()
            _exempt.add((parts.hostname.lower(), port))


def is_exempt(host: str, port: int) -> bool:
    """Whether (host, port) is a pool proxy's, as exempted by `exempt_proxy`."""
    with _lock:
        return (host.lower().strip("[]"), port) in _exempt


def installed_policy() -> TargetPolicy | None:
    """The policy `install` put on this process's reactor, if any."""
    return _state.get("policy")


def blocked_reason(host: str, port: int) -> str | None:
    """Why the policy refused (host, port) on this process's reactor, if it did."""
    with _lock:
        return _blocked.get((host.lower(), port))


def _remember(host: str, port: int, reason: str) -> None:
    with _lock:
        if len(_blocked) > _MAX_REMEMBERED:
            _blocked.clear()
        _blocked[(host.lower(), port)] = reason


def _reason(policy: TargetPolicy, host: str, address: str, port: int) -> str:
    """The policy's own words for the refusal: the service's port, a metadata address, or
    which blocked range."""
    why = policy.refusal(address, port, host) or "refused by the target policy"
    if parse_ip(host) is not None:
        return why
    return f"{host} resolves to {why}"


def install(reactor: Any, policy: TargetPolicy) -> None:
    """Make every hostname resolution of `reactor` pass through `policy`."""
    from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver

    wrapped = reactor.nameResolver
    _state["policy"] = policy

    @implementer(IHostnameResolver)
    class PolicyResolver:
        def resolveHostName(  # noqa: N802 - Twisted's interface
            self,
            receiver: Any,
            hostName: str,  # noqa: N803
            portNumber: int = 0,  # noqa: N803
            addressTypes: Any = None,  # noqa: N803
            transportSemantics: str = "TCP",  # noqa: N803
        ) -> Any:
            if is_exempt(hostName, portNumber):  # a pool proxy: infrastructure
                return wrapped.resolveHostName(
                    receiver, hostName, portNumber, addressTypes, transportSemantics
                )
            allowed: list[str] = []
            blocked: list[str] = []

            @implementer(IResolutionReceiver)
            class Filter:
                def resolutionBegan(self, resolution: Any) -> None:  # noqa: N802
                    receiver.resolutionBegan(resolution)

                def addressResolved(self, address: Any) -> None:  # noqa: N802
                    host = str(address.host).split("%", 1)[0]
                    if policy.allows(host, portNumber, hostName):
                        allowed.append(host)
                        receiver.addressResolved(address)
                    else:
                        blocked.append(host)

                def resolutionComplete(self) -> None:  # noqa: N802
                    if blocked and not allowed:
                        _remember(
                            hostName, portNumber, _reason(policy, hostName, blocked[0], portNumber)
                        )
                    receiver.resolutionComplete()

            return wrapped.resolveHostName(
                Filter(), hostName, portNumber, addressTypes, transportSemantics
            )

    reactor.installNameResolver(PolicyResolver())
