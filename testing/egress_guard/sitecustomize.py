"""Loaded by every Python process the test stack starts (PYTHONPATH): records any attempt to
reach an address outside loopback, so a test fails when the service reaches for the internet.

Active only when EGRESS_GUARD_LOG names a file; each offending connect or name lookup is
appended to it as one line. The service must make no outbound request of its own.
"""

from __future__ import annotations

import ipaddress
import os
import sys

_LOG = os.environ.get("EGRESS_GUARD_LOG")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}


def _local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    text = str(host).strip("[]").split("%", 1)[0].rstrip(".").lower()
    if text in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False  # a name other than localhost: a lookup that may leave the machine
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _hook(event: str, args: tuple) -> None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _local(address[0]):
            _record(f"connect {address!r}")
    elif event == "socket.getaddrinfo" and not _local(args[0]):
        _record(f"getaddrinfo {args[0]!r}")


def _record(line: str) -> None:
    try:
        with open(_LOG, "a") as out:  # type: ignore[arg-type]
            out.write(f"{os.getpid()} {' '.join(sys.argv[:3])}: {line}\n")
    except OSError:
        pass


if _LOG:
    sys.addaudithook(_hook)
