"""The target policy: which addresses user-supplied URLs may reach (SSRF protection).

One decision, used everywhere a user's URL turns into a connection: the API (a literal blocked
address in a start or webhook URL answers 422), the Scrapy engine's name resolver, the browser's
egress proxy and the webhook sender. Enforcement always judges the address actually connected
to, after name resolution, so a name that resolves to a private address (or re-resolves to one:
DNS rebinding) is caught where the connection is made.

`PRIVATE_TARGETS=block|allow` (default: allow in local/test/development while the API listens
on loopback only, block elsewhere) and `TARGET_ALLOWLIST` (comma-separated CIDRs, IPs, host
names, `host:port` or `[v6]:port`). Whatever the mode, link-local and cloud-metadata addresses
and the service's own loopback ports (Redis, MongoDB, API, Flower) stay blocked unless
allow-listed, so even a local install cannot be pointed at itself or at a cloud's credentials.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

BLOCKED_TARGET = "blocked_target"

# Ranges a user's URL must not reach. ipaddress' `is_global` misses some (multicast, 6to4,
# NAT64 and Teredo embed an IPv4 address, handled in `_embedded_v4`), so the list is explicit.
_BLOCKED_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local: cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255
    )
]
_BLOCKED_V6 = [
    ipaddress.ip_network(n)
    for n in (
        "::/128",
        "::1/128",
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique-local
        "fe80::/10",  # link-local
        "fec0::/10",  # old site-local
        "ff00::/8",  # multicast
    )
]
# Blocked in every mode, PRIVATE_TARGETS=allow included, unless TARGET_ALLOWLIST names them: a
# cloud instance's metadata service hands out its credentials to whoever asks.
_METADATA = [
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # link-local: AWS, GCP, Azure, OpenStack metadata at 169.254.169.254
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "192.0.0.192/32",  # Oracle Cloud metadata (older instances)
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
    )
]
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
    }
)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "ip6-localhost"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LEGACY_V4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class BlockedTarget(Exception):
    """A URL or address the target policy refuses; str() is a sentence for the user."""

    type = BLOCKED_TARGET


def parse_ip(host: str) -> IPAddress | None:
    """`host` as an IP address when it is a literal in any form a resolver accepts, else None.

    Catches the forms that slip past naive checks: brackets, zone ids, trailing dots, and the
    legacy IPv4 spellings that inet_aton (and browsers) accept: `2130706433`, `0x7f.1`,
    `0177.0.0.1`, `127.1`.
    """
    text = host.strip().strip("[]").rstrip(".")
    text = text.split("%", 1)[0]  # IPv6 zone id (fe80::1%eth0)
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _LEGACY_V4.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def metadata_range(ip: IPAddress | str) -> Any | None:
    """The link-local or cloud-metadata network `ip` is in (blocked in every mode), or None."""
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            return metadata_range(inner)
    return next((net for net in _METADATA if address in net), None)


def blocked_range(ip: IPAddress | str) -> str:
    """The blocked range `ip` is in, for messages: `10.0.0.0/8`, or `::ffff:0:0/96 → 10.0.0.0/8`."""
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            return blocked_range(inner)
        nets = _BLOCKED_V6
    else:
        nets = _BLOCKED_V4
    found = next((net for net in nets if address in net), None)
    return str(found) if found is not None else "not globally routable"


def listens_beyond_loopback(api_host: str) -> bool:
    """Whether an API bound to `api_host` can be reached from other machines (0.0.0.0, a LAN
    address, a name): then it is exposed, and private targets are blocked by default."""
    host = (api_host or "").strip().lower()
    if host in LOOPBACK_HOSTS:
        return False
    ip = parse_ip(host)
    return ip is None or not ip.is_loopback


def is_private(ip: IPAddress | str) -> bool:
    """True when `ip` is not a public unicast address (loopback, private, link-local, …)."""
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            return is_private(inner)
        return any(address in net for net in _BLOCKED_V6) or not address.is_global
    return any(address in net for net in _BLOCKED_V4) or not address.is_global


@dataclass(frozen=True)
class _Allow:
    networks: tuple[Any, ...] = ()
    hosts: frozenset[str] = frozenset()
    host_ports: frozenset[tuple[str, int]] = frozenset()


def parse_allowlist(text: str) -> _Allow:
    """TARGET_ALLOWLIST: `10.0.0.0/8, 127.0.0.1:8080, [::1]:9000, intranet.example`."""
    networks: list[Any] = []
    hosts: set[str] = set()
    host_ports: set[tuple[str, int]] = set()
    for raw in (part.strip() for part in (text or "").split(",")):
        if not raw:
            continue
        if "/" in raw:
            networks.append(ipaddress.ip_network(raw, strict=False))
            continue
        host, port = raw, None
        if raw.startswith("["):
            host, _, rest = raw[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else None
        elif raw.count(":") == 1:
            host, _, number = raw.partition(":")
            port = int(number)
        ip = parse_ip(host)
        key = str(ip) if ip is not None else host.lower().rstrip(".")
        if port is None:
            if ip is not None:
                networks.append(ipaddress.ip_network(key))
            else:
                hosts.add(key)
        else:
            host_ports.add((key, port))
    return _Allow(tuple(networks), frozenset(hosts), frozenset(host_ports))


@dataclass(frozen=True)
class TargetPolicy:
    """Decides whether (address, port), reached for host name `host`, may be contacted."""

    block_private: bool = True
    allow: _Allow = field(default_factory=_Allow)
    own_ports: frozenset[int] = frozenset()

    @classmethod
    def from_settings(cls, settings: Any) -> TargetPolicy:
        mode = (getattr(settings, "private_targets", "") or "").strip().lower()
        if mode not in ("", "block", "allow"):
            raise ValueError(f"PRIVATE_TARGETS must be block or allow, not {mode!r}")
        # the local default (allow) holds only while nobody else can reach the API: a newcomer's
        # `make run` on a cloud VM with the port opened must not be a proxy into its network
        exposed = listens_beyond_loopback(getattr(settings, "api_host", "127.0.0.1"))
        block = mode == "block" or (mode == "" and (not settings.is_local or exposed))
        return cls(
            block_private=block,
            allow=parse_allowlist(getattr(settings, "target_allowlist", "")),
            own_ports=frozenset(_own_ports(settings)),
        )

    def allows(self, ip: IPAddress | str, port: int, host: str | None = None) -> bool:
        """May a connection to `ip`:`port` be opened (for a URL naming `host`)?"""
        return self.refusal(ip, port, host) is None

    def refusal(self, ip: IPAddress | str, port: int, host: str | None = None) -> str | None:
        """Why a connection to `ip`:`port` (for a URL naming `host`) is refused, as a sentence
        naming the real cause (a metadata address, the service's own port, a blocked range);
        None when it may be opened."""
        address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
        names = {str(address)}
        if host:
            names.add(host.lower().strip("[]").rstrip("."))
        if any((name, port) in self.allow.host_ports for name in names):
            return None
        if any(address in net for net in self.allow.networks):
            return None
        if host and host.lower().rstrip(".") in self.allow.hosts:
            return None
        shown = f"[{address}]" if address.version == 6 else str(address)
        metadata = metadata_range(address)
        if metadata is not None:
            return (
                f"{address} is a link-local or cloud-metadata address ({metadata}), blocked "
                "whatever PRIVATE_TARGETS says unless TARGET_ALLOWLIST names it"
            )
        private = is_private(address)
        if private and self._is_own(address, port):
            return (
                f"{shown}:{port} is a port of this ScrapeMaster service itself (its API, Flower, "
                "Redis or MongoDB), refused whatever PRIVATE_TARGETS says unless "
                f"TARGET_ALLOWLIST names {shown}:{port}"
            )
        if private and self.block_private:
            kind, network = describe(address), blocked_range(address)
            return f"{address} is a {kind} address (in {network}); {_HINT}"
        return None

    def _is_own(self, address: IPAddress, port: int) -> bool:
        if port not in self.own_ports:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_loopback or address.is_unspecified

    def check_url(self, url: str) -> None:
        """Refuse `url` when it names a blocked address literally (or a loopback name).

        Names are judged later, on the address they resolve to, where the connection is made.
        """
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise BlockedTarget(f"malformed port: {exc}") from None
        ip = parse_ip(host)
        name = host.rstrip(".").lower()
        if ip is None and name in _LOOPBACK_NAMES:
            ip = ipaddress.ip_address("127.0.0.1")
        if ip is None and name in METADATA_NAMES and name not in self.allow.hosts:
            raise BlockedTarget(
                f"{host} is a cloud-metadata service name, blocked whatever PRIVATE_TARGETS says "
                "unless TARGET_ALLOWLIST names it"
            )
        reason = self.refusal(ip, port, host) if ip is not None else None
        if reason is not None:
            raise BlockedTarget(reason if str(ip) == host.strip("[]") else f"{host}: {reason}")

    def resolve(self, host: str, port: int) -> list[str]:
        """The allowed addresses `host` resolves to, in resolver order.

        Raises BlockedTarget when it resolves only to blocked addresses, OSError when not at all.
        """
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        return self.filter(host, port, found)

    def filter(self, host: str, port: int, addresses: Iterable[str]) -> list[str]:
        """Keep the addresses of `host` that may be contacted; BlockedTarget when none may."""
        addresses = list(addresses)
        allowed = [a for a in addresses if self.allows(a.split("%", 1)[0], port, host)]
        if addresses and not allowed:
            first = ipaddress.ip_address(addresses[0].split("%", 1)[0])
            reason = self.refusal(first, port, host)
            raise BlockedTarget(f"{host} resolves to a {describe(first)} address: {reason}")
        return allowed

    def session(self) -> Any:
        """A requests.Session that connects only to addresses this policy allows."""
        from shared.guarded_http import guarded_session

        return guarded_session(self)


_HINT = (
    "private and internal targets are blocked (PRIVATE_TARGETS=block, the default outside "
    "local mode and whenever API_HOST is not loopback; TARGET_ALLOWLIST to allow some)"
)

# Request headers a job may not set: they route, frame or authenticate the request itself
# (Host picks the virtual host behind a shared address; the metadata headers are what cloud
# metadata services require to answer), so they are the service's to decide.
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "connection",
        "content-length",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "keep-alive",
        "expect",
        "forwarded",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "metadata-flavor",  # Google Cloud metadata
        "metadata",  # Azure instance metadata
        "x-aws-ec2-metadata-token",
        "x-aws-ec2-metadata-token-ttl-seconds",
    }
)
FORBIDDEN_HEADER_PREFIXES = ("proxy-", "x-forwarded-", "sec-")


def header_problem(name: str) -> str | None:
    """Why a job may not set request header `name`, or None."""
    lowered = name.strip().lower()
    if lowered in FORBIDDEN_HEADERS or lowered.startswith(FORBIDDEN_HEADER_PREFIXES):
        return f"the {name} header is set by the service, not by a job"
    if not lowered or any(ch in lowered for ch in "\r\n:\0"):
        return f"{name!r} is not a valid header name"
    return None


def has_credentials(url: str) -> bool:
    """Whether `url` carries a user name or password (`http://user:pass@host/`)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.username is not None or parts.password is not None


def redact_url(url: str) -> str:
    """`url` without credentials, for error messages and logs."""
    if not has_credentials(url):
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def describe(ip: IPAddress) -> str:
    """A word for the kind of address, for error messages."""
    if isinstance(ip, ipaddress.IPv6Address) and _embedded_v4(ip) is not None:
        return describe(_embedded_v4(ip))  # type: ignore[arg-type]
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if is_private(ip):
        return "private"
    return "public"


def _own_ports(settings: Any) -> set[int]:
    """The loopback ports of the service itself: its Redis, MongoDB, API and Flower."""
    ports: set[int] = set()
    for attr in ("api_port", "flower_port", "embedded_mongo_port"):
        value = getattr(settings, attr, None)
        if isinstance(value, int) and value > 0:
            ports.add(value)
    for attr in ("redis_url", "mongo_url"):
        url = getattr(settings, attr, "") or ""
        for netloc in re.findall(r"//(?:[^@/]*@)?([^/?]+)", url):
            for hostport in netloc.split(","):
                try:
                    port = urlsplit(f"//{hostport}").port
                except ValueError:
                    continue
                if port:
                    ports.add(port)
    return ports
