"""The target policy as pure logic: address classification and allow-lists (nothing contacted)."""

from __future__ import annotations

import pytest

from shared.settings import Settings
from shared.targets import BlockedTarget, TargetPolicy, is_private, parse_allowlist, parse_ip

BLOCKED = TargetPolicy(block_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fd00::1",  # unique-local
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "::127.0.0.1",  # IPv4-compatible
    ],
)
def test_internal_addresses_are_private(address):
    assert is_private(address)
    assert not BLOCKED.allows(address, 80)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "1.1.1.1"])
def test_public_addresses_are_allowed(address):
    assert not is_private(address)
    assert BLOCKED.allows(address, 443)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),  # decimal
        ("0x7f.1", "127.0.0.1"),  # hex, short form
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("127.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),  # trailing dot
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1"),  # zone id
        ("169.254.169.254", "169.254.169.254"),
    ],
)
def test_literal_spellings_are_parsed_as_addresses(host, expected):
    assert str(parse_ip(host)) == expected


@pytest.mark.parametrize("host", ["example.com", "1.example", "0x7f.example", "localhost"])
def test_names_are_not_literals(host):
    assert parse_ip(host) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/",
        "http://[::1]:27117/",
        "http://localhost:8000/api/v1/health",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0.0.0.0:5555/",
        "http://[::ffff:127.0.0.1]/",
        "http://public@127.0.0.1/",
        "http://10.0.0.1./",
        "http://[fd00::1]/",
    ],
)
def test_literal_blocked_urls_are_refused(url):
    with pytest.raises(BlockedTarget, match="blocked"):
        BLOCKED.check_url(url)


def test_names_are_left_to_the_connection_check():
    BLOCKED.check_url("http://example.com/")  # judged where it resolves, not here


def test_allowlist_by_cidr_host_and_port():
    policy = TargetPolicy(
        block_private=True,
        allow=parse_allowlist("10.1.0.0/16, 127.0.0.1:8080, [::1]:9000, intranet.example"),
    )
    assert policy.allows("10.1.2.3", 80)
    assert not policy.allows("10.2.0.1", 80)
    assert policy.allows("127.0.0.1", 8080)
    assert not policy.allows("127.0.0.1", 8081)  # another loopback port: the tripwire case
    assert policy.allows("::1", 9000)
    assert policy.allows("10.9.9.9", 80, host="intranet.example")
    assert not policy.allows("10.9.9.9", 80, host="other.example")
    policy.check_url("http://127.0.0.1:8080/catalog/")
    with pytest.raises(BlockedTarget):
        policy.check_url("http://127.0.0.1:8081/")


def test_filter_keeps_allowed_addresses_and_refuses_all_blocked():
    assert BLOCKED.filter("mixed.example", 80, ["10.0.0.1", "93.184.215.14"]) == ["93.184.215.14"]
    with pytest.raises(BlockedTarget, match="resolves to a private address"):
        BLOCKED.filter("rebind.example", 80, ["10.0.0.1"])


def test_mode_follows_env_and_setting():
    local = TargetPolicy.from_settings(Settings.from_env({}, env="local"))
    assert local.allows("10.0.0.1", 80)
    prod = Settings.from_env(
        {}, env="production", jwt_secret_key="x" * 32, mongo_url="mongodb://db:27017"
    )
    assert not TargetPolicy.from_settings(prod).allows("10.0.0.1", 80)
    forced = Settings.from_env({}, env="local", private_targets="block")
    assert not TargetPolicy.from_settings(forced).allows("192.168.0.2", 80)


def test_the_services_own_ports_stay_blocked_even_when_private_targets_are_allowed():
    settings = Settings.from_env(
        {}, env="local", redis_url="redis://127.0.0.1:6390/0", api_port=8123, flower_port=5566
    )
    policy = TargetPolicy.from_settings(settings)
    for port in (6390, 8123, 5566, settings.embedded_mongo_port):
        assert not policy.allows("127.0.0.1", port)
        assert not policy.allows("::ffff:127.0.0.1", port)
    assert policy.allows("127.0.0.1", 8124)
    with pytest.raises(BlockedTarget):
        policy.check_url("http://localhost:8123/api/v1/health")


def test_bad_settings_fail_fast():
    from shared.settings import SettingsError

    with pytest.raises(SettingsError, match="PRIVATE_TARGETS"):
        Settings.from_env({}, private_targets="sometimes")
    with pytest.raises(SettingsError, match="TARGET_ALLOWLIST"):
        Settings.from_env({}, target_allowlist="10.0.0.0/33")
