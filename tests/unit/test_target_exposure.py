"""The target policy when it matters most, as pure logic (nothing is contacted): cloud metadata
stays blocked in local mode, an API listening beyond loopback blocks private targets by default,
and a refusal names its real cause."""

from __future__ import annotations

import pytest

from shared.settings import Settings
from shared.targets import BlockedTarget, TargetPolicy, listens_beyond_loopback

LOCAL = TargetPolicy.from_settings(Settings.from_env({}, env="local"))

METADATA = [
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack
    "169.254.170.2",  # AWS ECS task credentials
    "169.254.0.1",
    "100.100.100.200",  # Alibaba Cloud
    "fd00:ec2::254",  # AWS over IPv6
    "fe80::1",
    "::ffff:169.254.169.254",  # the same address spelt as IPv4-mapped IPv6
]


@pytest.mark.parametrize("address", METADATA)
def test_local_mode_still_blocks_link_local_and_metadata_addresses(address):
    assert not LOCAL.block_private  # local mode: private targets are allowed...
    assert not LOCAL.allows(address, 80)  # ...but never the metadata service
    assert "metadata" in (LOCAL.refusal(address, 80) or "")
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(BlockedTarget, match="whatever PRIVATE_TARGETS says"):
        LOCAL.check_url(f"http://{host}/latest/meta-data/")
    with pytest.raises(BlockedTarget, match="metadata"):
        LOCAL.filter("innocent.example", 80, [address])


@pytest.mark.parametrize(
    "name", ["metadata.google.internal", "METADATA.GOOGLE.INTERNAL.", "metadata"]
)
def test_metadata_service_names_are_refused_before_any_lookup(name):
    with pytest.raises(BlockedTarget, match="cloud-metadata service name"):
        LOCAL.check_url(f"http://{name}/computeMetadata/v1/")


def test_only_an_explicit_allow_list_entry_opens_a_metadata_address():
    listed = Settings.from_env(
        {}, env="local", target_allowlist="169.254.169.254, metadata.google.internal"
    )
    policy = TargetPolicy.from_settings(listed)
    assert policy.allows("169.254.169.254", 80)
    policy.check_url("http://metadata.google.internal/")
    assert not policy.allows("169.254.170.2", 80)  # the entry names one address only
    assert LOCAL.allows("10.0.0.1", 80) and LOCAL.allows("fd00::1", 80)  # other private: allowed


@pytest.mark.parametrize(
    "host, exposed",
    [
        ("127.0.0.1", False),
        ("localhost", False),
        ("::1", False),
        ("127.0.0.2", False),
        ("0.0.0.0", True),
        ("::", True),
        ("10.0.0.5", True),
        ("", True),
        ("myhost.example", True),
    ],
)
def test_an_api_listening_beyond_loopback_is_exposed(host, exposed):
    assert listens_beyond_loopback(host) is exposed


def test_an_exposed_local_api_blocks_private_targets_by_default():
    exposed = TargetPolicy.from_settings(Settings.from_env({}, env="local", api_host="0.0.0.0"))
    assert exposed.block_private and not exposed.allows("10.0.0.1", 80)
    with pytest.raises(BlockedTarget, match="API_HOST"):
        exposed.check_url("http://192.168.1.10/")
    chosen = Settings.from_env({}, env="local", api_host="0.0.0.0", private_targets="allow")
    assert TargetPolicy.from_settings(chosen).allows("10.0.0.1", 80)  # said explicitly: kept
    assert not TargetPolicy.from_settings(chosen).allows("169.254.169.254", 80)
    env = Settings.from_env({"API_HOST": "0.0.0.0", "ENV": "development"})
    assert TargetPolicy.from_settings(env).block_private


def test_a_refusal_names_the_services_own_port_not_private_targets():
    settings = Settings.from_env({}, env="local", api_port=8123)
    policy = TargetPolicy.from_settings(settings)
    with pytest.raises(BlockedTarget) as refused:
        policy.check_url("http://127.0.0.1:8123/api/v1/health")
    message = str(refused.value)
    assert "127.0.0.1:8123 is a port of this ScrapeMaster service itself" in message
    assert (
        "PRIVATE_TARGETS=block" not in message
        and "TARGET_ALLOWLIST names 127.0.0.1:8123" in message
    )
    with pytest.raises(BlockedTarget, match="port of this ScrapeMaster service"):
        policy.check_url("http://localhost:8123/")


@pytest.mark.parametrize(
    "address, fragment",
    [
        ("10.1.2.3", "private address (in 10.0.0.0/8)"),
        ("192.168.0.9", "(in 192.168.0.0/16)"),
        ("127.0.0.1", "loopback address (in 127.0.0.0/8)"),
        ("100.64.1.1", "(in 100.64.0.0/10)"),
        ("fd12::1", "(in fc00::/7)"),
        ("::ffff:10.0.0.1", "(in 10.0.0.0/8)"),
    ],
)
def test_a_blocked_range_is_named(address, fragment):
    policy = TargetPolicy(block_private=True)
    reason = policy.refusal(address, 80)
    assert reason is not None and fragment in reason and "PRIVATE_TARGETS=block" in reason
