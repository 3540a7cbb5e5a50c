"""The job state machine: one table decides every status change."""

from __future__ import annotations

import pytest

from shared import jobs
from shared.jobs import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, STATUSES

ALLOWED = {
    ("claim", PENDING): RUNNING,
    ("complete", RUNNING): COMPLETED,
    ("fail", RUNNING): FAILED,
    ("cancel", PENDING): CANCELLED,
    ("cancel", RUNNING): CANCELLED,
    ("retry", FAILED): PENDING,
    ("retry", CANCELLED): PENDING,
    ("reset", COMPLETED): PENDING,
    ("reset", FAILED): PENDING,
    ("reset", CANCELLED): PENDING,
}


@pytest.mark.parametrize("action", ["claim", "complete", "fail", "cancel", "retry", "reset"])
@pytest.mark.parametrize("status", STATUSES)
def test_user_visible_transitions_match_the_contract(action, status):
    expected = ALLOWED.get((action, status))
    assert jobs.allowed(action, status) is (expected is not None)
    if expected:
        assert jobs.target(action) == expected


def test_terminal_states_only_leave_through_retry_or_reset():
    for status in jobs.TERMINAL:
        leaving = {a for a in jobs.TRANSITIONS if jobs.allowed(a, status)}
        assert leaving <= {"retry", "reset"}


@pytest.mark.parametrize(
    ("given", "expected"), [("low", 2), ("normal", 5), ("high", 8), (0, 0), (9, 9), (None, 5)]
)
def test_priority_names_and_numbers(given, expected):
    assert jobs.normalize_priority(given) == expected


@pytest.mark.parametrize("bad", ["urgent", 10, -1, True])
def test_bad_priorities_are_refused(bad):
    with pytest.raises(ValueError):
        jobs.normalize_priority(bad)


def test_auto_and_scrapy_start_on_the_scrapy_queue():
    assert [jobs.queue_for(e) for e in jobs.ENGINES] == ["scrapy", "scrapy", "playwright"]
