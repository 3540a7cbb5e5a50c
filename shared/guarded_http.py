"""A requests session whose every connection is checked by the target policy at connect time.

urllib3 resolves a host and connects in one step (`create_connection`); here the connection
classes resolve first, drop the addresses the policy refuses, and connect only to what is left,
so the address checked is the address used (no DNS-rebinding window). TLS still verifies the
certificate against the host name. Environment proxies are ignored: they would bypass the check.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import connection, connectionpool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

if TYPE_CHECKING:
    from shared.targets import TargetPolicy


def _connect(conn: Any, policy: TargetPolicy) -> socket.socket:
    try:
        addresses = policy.resolve(conn._dns_host, conn.port)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    last: OSError | None = None
    for address in addresses:
        try:
            return create_connection(
                (address, conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(conn, f"connection to {conn.host} timed out") from exc
        except OSError as exc:
            last = exc
    raise NewConnectionError(conn, f"Failed to establish a new connection: {last}")


def guarded_session(policy: TargetPolicy) -> requests.Session:
    """A Session for user-supplied URLs (webhook receivers): connects only where `policy` allows."""

    class GuardedHTTPConnection(connection.HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, policy)

    class GuardedHTTPSConnection(connection.HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, policy)

    class GuardedHTTPPool(connectionpool.HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSPool(connectionpool.HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": GuardedHTTPPool,
                "https": GuardedHTTPSPool,
            }

    session = requests.Session()
    session.trust_env = False  # an HTTP(S)_PROXY from the environment would bypass the policy
    adapter = GuardedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
