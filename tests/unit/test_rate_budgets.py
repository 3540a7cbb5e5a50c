"""The default read budget holds an hour of heavy dashboard use and a 1/s polling script, at
their real cadences (testing/dashboard_traffic.py), whatever the window's alignment."""

from __future__ import annotations

import pytest
from limits import parse_many

from shared.settings import Settings, SettingsError
from testing.dashboard_traffic import busiest_span, dashboard_hour, polling_script_hour


def _budgets(value: str) -> list[tuple[int, int]]:
    """(amount, window seconds) of each limit in a RATE_LIMIT_* string."""
    return [(item.amount, item.get_expiry()) for item in parse_many(value)]


def test_an_hour_of_dashboard_and_a_polling_script_stay_under_the_default_read_budget():
    reads = Settings.from_env({}).rate_limit_reads
    calls = sorted(dashboard_hour() + polling_script_hour())
    assert len(calls) > 12_000  # the hour would spend the old 1000/hour budget 12 times over
    for amount, seconds in _budgets(reads):
        busiest = len(busiest_span(calls, seconds))
        # room to spare: a second dashboard tab's page load still fits
        assert busiest <= 0.6 * amount, (reads, busiest)


def test_a_script_polling_once_a_second_uses_a_twentieth_of_the_read_budget():
    reads = Settings.from_env({}).rate_limit_reads
    for amount, seconds in _budgets(reads):
        assert len(busiest_span(polling_script_hour(), seconds)) <= amount / 20


def test_busiest_span_finds_the_densest_window_whatever_its_alignment():
    calls = [(t, "GET", "/x") for t in (0, 10, 59, 61, 62, 100, 118, 200)]
    assert [c[0] for c in busiest_span(calls, 60)] == [59, 61, 62, 100, 118]


def test_rate_limit_settings_are_checked_and_the_old_name_still_sets_writes():
    assert Settings.from_env({"RATE_LIMIT_AUTHENTICATED": "5/minute"}).rate_limit_writes == (
        "5/minute"
    )
    both = {"RATE_LIMIT_AUTHENTICATED": "5/minute", "RATE_LIMIT_WRITES": "7/minute"}
    assert Settings.from_env(both).rate_limit_writes == "7/minute"
    assert Settings.from_env({"RATE_LIMIT_READS": ""}).rate_limit_reads == ""  # unlimited
    with pytest.raises(SettingsError, match="RATE_LIMIT_SUBMISSIONS"):
        Settings.from_env({"RATE_LIMIT_SUBMISSIONS": "lots"})
