"""Hosts as network namespaces on one Ethernet segment, and their removal.

Each host is a namespace with one interface on a private /24 and no other route; the segment is
a bridge inside a namespace of its own (the "switch"), so the machine's own namespace has no
address on it: nothing sent by a host can leave the segment. Names carry a prefix, so a run
that was killed hard is cleaned up by the next one (under a lock: one run per machine).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path

PREFIX = "smsim"
SUBNET = "10.250.47"  # a /24 that exists only inside the switch namespace
LOCK = Path("/run/scrapemaster-sim.lock")
LOCK_WAIT_SECONDS = 300
CLONE_NEWNET = 0x40000000


class NetError(RuntimeError):
    """A namespace or link could not be made (not root, no iproute2, …)."""


def ip(*args: str, check: bool = True) -> str:
    """Run `ip ARGS` and return its output."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and done.returncode != 0:
        raise NetError(f"ip {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def ns_pids(namespace: str) -> list[int]:
    """Every process whose network namespace is `namespace` (never this one)."""
    out = ip("netns", "pids", namespace, check=False)
    return [int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid()]


def kill_namespace(namespace: str, sig: int = signal.SIGKILL) -> int:
    """Send `sig` to every process in `namespace`; how many there were."""
    pids = ns_pids(namespace)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return len(pids)


class Network:
    """The hosts of one run: `add(name)` gives each its namespace and address."""

    def __init__(self) -> None:
        self.switch = f"{PREFIX}-switch"
        self.hosts: dict[str, str] = {}  # name -> address
        self.ports: dict[str, str] = {}  # name -> its port on the switch
        self._lock: int | None = None

    def namespace(self, host: str) -> str:
        return f"{PREFIX}-{host}"

    def address(self, host: str) -> str:
        return self.hosts[host]

    def create(self) -> None:
        """Take the machine-wide lock, clear what a killed run left, make the switch."""
        if os.geteuid() != 0:
            raise NetError("the simulation makes network namespaces: run it as root")
        LOCK.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:  # another run's simulation (a second `make test`) ends within minutes
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(lock)
                    raise NetError(
                        f"another simulation runs on this machine ({LOCK} is locked "
                        f"for more than {LOCK_WAIT_SECONDS} s)"
                    ) from None
                time.sleep(0.5)
        self._lock = lock  # only a run that holds the lock may clear namespaces (destroy)
        self.clear_leftovers()
        ip("netns", "add", self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")

    def add(self, host: str, last_octet: int) -> str:
        """A new host with address SUBNET.last_octet, cabled to the switch."""
        namespace, port = self.namespace(host), f"p{last_octet}"
        address = f"{SUBNET}.{last_octet}"
        ip("netns", "add", namespace)
        ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", namespace)  # fmt: skip
        ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        self.hosts[host], self.ports[host] = address, port
        return address

    def check_isolated(self) -> None:
        """Each host routes only the segment: no default route, no way off it."""
        for host in self.hosts:
            table = [line.split() for line in ip("-n", self.namespace(host), "route").splitlines()]
            if [r[:3] for r in table if r] != [[f"{SUBNET}.0/24", "dev", "eth0"]]:
                raise NetError(f"{host} has routes beyond its segment: {table}")

    def cut(self, host: str) -> None:
        """Pull the host's cable: its port on the switch and its interface are gone."""
        ip("-n", self.switch, "link", "del", self.ports[host], check=False)

    def enter(self, host: str) -> None:
        """Move this process's network into `host` (call before starting threads)."""
        fd = os.open(f"/run/netns/{self.namespace(host)}", os.O_RDONLY)
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise NetError(f"setns into {host}: errno {ctypes.get_errno()}")
        finally:
            os.close(fd)

    def kill(self, host: str, sig: int = signal.SIGKILL) -> int:
        return kill_namespace(self.namespace(host), sig)

    def destroy(self) -> None:
        """Kill every process of every host and delete every namespace (idempotent). Without
        the lock nothing here is ours: the namespaces belong to the run that holds it."""
        if self._lock is None:
            return
        for host in list(self.hosts):
            self.kill(host, signal.SIGKILL)
        self.clear_leftovers()
        self.hosts.clear()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @staticmethod
    def clear_leftovers() -> list[str]:
        """Delete every namespace of this prefix, killing its processes first."""
        names = [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]
        ours = [n for n in names if n.startswith(f"{PREFIX}-")]
        for name in ours:
            kill_namespace(name, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(ns_pids(n) for n in ours) and time.monotonic() < deadline:
            time.sleep(0.1)
        for name in ours:
            ip("netns", "del", name, check=False)
        return ours
