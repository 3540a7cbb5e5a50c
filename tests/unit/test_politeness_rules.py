"""Pure rules of the fleet-wide politeness: which site a URL counts against, the order in
which waiting jobs get slots, the delay that applies."""

from __future__ import annotations

import pytest

from shared.politeness import MAX_CRAWL_DELAY, effective_delay, fair_order, site_key


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://www.example.com/a", "example.com"),
        ("http://shop.example.com:8080/", "example.com"),  # subdomains and ports: one site
        ("https://a.b.example.co.uk/x", "example.co.uk"),  # multi-label public suffix
        ("https://alice.github.io/", "alice.github.io"),  # private suffix: separate sites
        ("https://bob.github.io/", "bob.github.io"),
        ("http://127.0.0.1:8001/catalog/", "127.0.0.1:8001"),  # an IP is its own, per port
        ("http://127.0.0.1:8002/", "127.0.0.1:8002"),
        ("http://127.0.0.1/", "127.0.0.1:80"),
        ("https://[::1]:9000/", "[::1]:9000"),
        ("http://localhost:5000/", "localhost:5000"),  # no public suffix: the host per port
        ("HTTP://WWW.Example.COM./", "example.com"),
    ],
)
def test_site_key_is_the_registered_domain(url, site):
    assert site_key(url) == site


def test_waiting_jobs_take_turns_in_arrival_order():
    assert fair_order(["A", "A", "A", "B", "C", "A", "B"]) == ["A", "B", "C", "A", "B", "A", "A"]


def test_a_job_alone_keeps_its_order():
    assert fair_order(["A", "A", "A"]) == ["A", "A", "A"]


def test_crawl_delay_counts_when_larger_and_is_capped():
    assert effective_delay(0.0, None) == 0.0
    assert effective_delay(1.0, 0.5) == 1.0
    assert effective_delay(0.0, 2.5) == 2.5
    assert effective_delay(0.0, 10_000) == MAX_CRAWL_DELAY
